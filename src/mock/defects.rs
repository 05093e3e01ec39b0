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

            /// One defect a line: its name, then the rule it breaks (`--list-defects`).
            pub fn listing() -> String {
                let width = Self::ALL.iter().map(|d| d.name().len()).max().unwrap_or(0);
                Self::ALL.iter().map(|d| format!("{:width$}  {}\n", d.name(), d.rule())).collect()
            }

            /// Every name as a defect of this mock, or the first unknown one (with a suggestion).
            pub fn parse_all(names: &[String]) -> Result<Vec<Self>, $crate::mock::defects::UnknownDefect> {
                names
                    .iter()
                    .map(|n| {
                        Self::from_name(n).ok_or_else(|| $crate::mock::defects::UnknownDefect {
                            name: n.clone(),
                            mock: Some(NAME),
                            suggestion: $crate::support::diagnostics::did_you_mean(n, Self::ALL.iter().map(|d| d.name())),
                        })
                    })
                    .collect()
            }
        }
    };
}

fn unknown_defect_message(mock: Option<&str>, name: &str) -> String {
    match mock {
        Some(m) => format!("the {m} mock has no defect named `{name}`"),
        None => format!("no mock has a defect named `{name}`"),
    }
}

/// A defect name no mock (or not this mock) has.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{}", unknown_defect_message(*.mock, .name))]
#[diagnostic(help("{}", match .suggestion {
    Some(best) => format!("did you mean `{best}`? (`--list-defects` lists them)"),
    None => "`oauth-harness mock identity-server --list-defects` (or `mock psc`) lists them".to_string(),
}))]
pub struct UnknownDefect {
    pub name: String,
    /// The mock asked, when it was one mock.
    pub mock: Option<&'static str>,
    pub suggestion: Option<&'static str>,
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
