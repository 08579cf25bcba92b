//! Diagnostics (errors and warnings with an optional attribute path) as the resources write them,
//! and their protocol form.

use super::proto;

/// A path into a value: attribute names, map keys and list indexes, outermost first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttributePath(Vec<Step>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Attribute(String),
    Key(String),
    Index(i64),
}

impl AttributePath {
    /// The path of a top-level attribute (or block).
    pub fn new(name: impl Into<String>) -> Self {
        AttributePath(vec![Step::Attribute(name.into())])
    }
    pub fn attribute(mut self, name: impl Into<String>) -> Self {
        self.0.push(Step::Attribute(name.into()));
        self
    }
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.0.push(Step::Key(key.into()));
        self
    }
    pub fn index(mut self, i: i64) -> Self {
        self.0.push(Step::Index(i));
        self
    }

    pub fn to_proto(&self) -> proto::AttributePath {
        use proto::attribute_path::step::Selector;
        proto::AttributePath {
            steps: self
                .0
                .iter()
                .map(|s| proto::attribute_path::Step {
                    selector: Some(match s {
                        Step::Attribute(a) => Selector::AttributeName(a.clone()),
                        Step::Key(k) => Selector::ElementKeyString(k.clone()),
                        Step::Index(i) => Selector::ElementKeyInt(*i),
                    }),
                })
                .collect(),
        }
    }
}

impl std::fmt::Display for AttributePath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attribute(a) if i == 0 => write!(f, "{a}")?,
                Step::Attribute(a) => write!(f, ".{a}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    pub path: Option<AttributePath>,
}

/// What a request found wrong; errors make Terraform stop, warnings are shown.
#[derive(Debug, Clone, Default)]
pub struct Diagnostics {
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    fn push(
        &mut self,
        severity: Severity,
        summary: String,
        detail: String,
        path: Option<AttributePath>,
    ) {
        self.items.push(Diagnostic {
            severity,
            summary,
            detail,
            path,
        });
    }
    /// An error about the whole request.
    pub fn root_error(&mut self, summary: impl Into<String>, detail: impl Into<String>) {
        self.push(Severity::Error, summary.into(), detail.into(), None);
    }
    pub fn root_error_short(&mut self, summary: impl Into<String>) {
        self.push(Severity::Error, summary.into(), String::new(), None);
    }
    /// An error about one attribute (Terraform underlines it in the configuration).
    pub fn error(
        &mut self,
        summary: impl Into<String>,
        detail: impl Into<String>,
        at: AttributePath,
    ) {
        self.push(Severity::Error, summary.into(), detail.into(), Some(at));
    }
    pub fn warning(
        &mut self,
        summary: impl Into<String>,
        detail: impl Into<String>,
        at: AttributePath,
    ) {
        self.push(Severity::Warning, summary.into(), detail.into(), Some(at));
    }
    /// Adds `other`'s diagnostics as warnings prefixed with `context` (a listing goes on past
    /// one object it cannot read).
    pub fn demote_errors(&mut self, other: Diagnostics, context: &str) {
        for d in other.items {
            self.push(
                Severity::Warning,
                format!("{context}: {}", d.summary),
                d.detail,
                d.path,
            );
        }
    }
    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|d| d.severity == Severity::Error)
    }

    pub fn to_proto(&self) -> Vec<proto::Diagnostic> {
        self.items
            .iter()
            .map(|d| proto::Diagnostic {
                severity: match d.severity {
                    Severity::Error => proto::diagnostic::Severity::Error,
                    Severity::Warning => proto::diagnostic::Severity::Warning,
                } as i32,
                summary: d.summary.clone(),
                detail: d.detail.clone(),
                attribute: d.path.as_ref().map(AttributePath::to_proto),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_and_encode_every_step() {
        let p = AttributePath::new("select")
            .index(0)
            .attribute("instance_tags")
            .key("Env");
        assert_eq!(p.to_string(), "select[0].instance_tags[\"Env\"]");
        assert_eq!(p.to_proto().steps.len(), 4);
        let mut d = Diagnostics::default();
        d.warning("w", "", AttributePath::new("a"));
        assert!(!d.has_errors());
        d.error("e", "detail", p);
        assert!(d.has_errors());
        let wire = d.to_proto();
        assert_eq!(wire[1].severity, proto::diagnostic::Severity::Error as i32);
        assert!(wire[1].attribute.is_some());
    }
}
