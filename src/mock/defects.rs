//! Switchable defects: each makes a mock break exactly one rule, so tests can prove the harness
//! catches it. Names are unique across all mocks (`run --mock-defect NAME` finds the owner).

/// Declares a mock's defect enum with, for each variant, its name and the rule it breaks.
macro_rules! defects {
    ($(#[$meta:meta])* $vis:vis enum $name:ident { $($variant:ident => ($id:literal, $rule:literal),)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name { $($variant,)+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub fn name(self) -> &'static str {
                match self { $($name::$variant => $id,)+ }
            }

            /// The rule this defect breaks, as `--list-defects` prints it.
            pub fn rule(self) -> &'static str {
                match self { $($name::$variant => $rule,)+ }
            }

            pub fn from_name(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|d| d.name() == name)
            }
        }
    };
}

pub(crate) use defects;

/// A set of switched-on defects of one mock.
#[derive(Debug, Clone)]
pub struct DefectSet<D: Copy + PartialEq>(Vec<D>);

impl<D: Copy + PartialEq> Default for DefectSet<D> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<D: Copy + PartialEq> DefectSet<D> {
    pub fn new(defects: impl IntoIterator<Item = D>) -> Self {
        Self(defects.into_iter().collect())
    }

    pub fn on(&self, defect: D) -> bool {
        self.0.contains(&defect)
    }
}
