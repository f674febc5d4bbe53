//! Queries on attributes (`docs/ATTRIBUTES.md` §4): a union of conjunctions of terms.
//!
//! | term | matches an object that … |
//! |---|---|
//! | `name=value` | has `name` equal to `value` (typed as the CLI types values) |
//! | `name=*` | has `name`, with any value |
//! | `!name` | lacks `name` |
//! | `name!=value` | lacks `name`, or has another value |
//!
//! Terms side by side must all hold; the word `or` between groups of terms makes a union.
//! An **exact** query (the paper's queries, §3) also asks that the object has no property
//! other than those its terms name with `=`: `first=Alyssa last=*` then finds objects with
//! exactly the properties `first` and `last`.

use std::collections::BTreeSet;

use ringblob_backends::names::attrs::check_name;
use ringblob_backends::names::{AttrValue, Attrs};

use super::AttrsError;

/// Most terms in one query (all branches together).
pub const MAX_TERMS: usize = 64;

/// One condition on one property.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Term {
    /// `name=value`
    Is(String, AttrValue),
    /// `name=*`
    Has(String),
    /// `!name`
    Lacks(String),
    /// `name!=value`
    IsNot(String, AttrValue),
}

impl Term {
    /// Parses one term.
    pub fn parse(text: &str) -> Result<Term, AttrsError> {
        let bad = || {
            AttrsError::Query(format!(
                "{text:?} is not NAME=VALUE, NAME=*, !NAME or NAME!=VALUE"
            ))
        };
        let term = if let Some(name) = text.strip_prefix('!') {
            Term::Lacks(name.to_string())
        } else if let Some((name, value)) = text.split_once("!=") {
            Term::IsNot(name.to_string(), AttrValue::parse(value))
        } else if let Some((name, value)) = text.split_once('=') {
            match value {
                "*" => Term::Has(name.to_string()),
                v => Term::Is(name.to_string(), AttrValue::parse(v)),
            }
        } else {
            return Err(bad());
        };
        check_name(term.name()).map_err(|_| bad())?;
        Ok(term)
    }

    /// The property the term is about.
    pub fn name(&self) -> &str {
        match self {
            Term::Is(n, _) | Term::Has(n) | Term::Lacks(n) | Term::IsNot(n, _) => n,
        }
    }

    /// Whether the term says the object has the property (`=`).
    pub fn is_positive(&self) -> bool {
        matches!(self, Term::Is(..) | Term::Has(_))
    }

    /// Whether `attrs` satisfy the term.
    pub fn holds(&self, attrs: &Attrs) -> bool {
        match self {
            Term::Is(n, v) => attrs.get(n) == Some(v),
            Term::Has(n) => attrs.get(n).is_some(),
            Term::Lacks(n) => attrs.get(n).is_none(),
            Term::IsNot(n, v) => attrs.get(n) != Some(v),
        }
    }
}

/// Terms that must all hold.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Conjunction(pub Vec<Term>);

impl Conjunction {
    /// The names the positive terms give the object.
    pub fn positive_names(&self) -> BTreeSet<&str> {
        self.0
            .iter()
            .filter(|t| t.is_positive())
            .map(|t| t.name())
            .collect()
    }

    /// The value an `=` term fixes `name` to, if any.
    pub fn fixed(&self, name: &str) -> Option<&AttrValue> {
        self.0.iter().find_map(|t| match t {
            Term::Is(n, v) if n == name => Some(v),
            _ => None,
        })
    }

    /// Whether the conjunction says the object lacks `name`.
    pub fn lacks(&self, name: &str) -> bool {
        self.0
            .iter()
            .any(|t| matches!(t, Term::Lacks(n) if n == name))
    }

    fn holds(&self, attrs: &Attrs, exact: bool) -> bool {
        let terms = self.0.iter().all(|t| t.holds(attrs));
        terms
            && (!exact
                || attrs
                    .iter()
                    .all(|(n, _)| self.positive_names().contains(n.as_str())))
    }
}

/// A query: a union of conjunctions, exact or not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Query {
    pub any_of: Vec<Conjunction>,
    pub exact: bool,
}

impl Query {
    /// Parses the words of `ringblob find` (terms, and `or` between conjunctions).
    pub fn parse<S: AsRef<str>>(words: &[S], exact: bool) -> Result<Query, AttrsError> {
        let mut any_of = vec![Conjunction::default()];
        let mut terms = 0;
        for word in words {
            let word = word.as_ref();
            if word == "or" {
                any_of.push(Conjunction::default());
                continue;
            }
            terms += 1;
            if terms > MAX_TERMS {
                return Err(AttrsError::Query(format!("more than {MAX_TERMS} terms")));
            }
            if let Some(last) = any_of.last_mut() {
                last.0.push(Term::parse(word)?);
            }
        }
        if any_of.iter().any(|c| c.0.is_empty()) {
            return Err(AttrsError::Query(
                "a query needs at least one term on each side of every `or`".into(),
            ));
        }
        Ok(Query { any_of, exact })
    }

    /// Whether an object with `attrs` is an answer.
    pub fn matches(&self, attrs: &Attrs) -> bool {
        self.any_of.iter().any(|c| c.holds(attrs, self.exact))
    }
}

impl std::fmt::Display for Query {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let branch = |c: &Conjunction| {
            c.0.iter()
                .map(|t| match t {
                    Term::Is(n, v) => format!("{n}={v}"),
                    Term::Has(n) => format!("{n}=*"),
                    Term::Lacks(n) => format!("!{n}"),
                    Term::IsNot(n, v) => format!("{n}!={v}"),
                })
                .collect::<Vec<_>>()
                .join(" ")
        };
        let text: Vec<String> = self.any_of.iter().map(branch).collect();
        write!(f, "{}", text.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn attrs(pairs: &[&str]) -> Result<Attrs, Box<dyn std::error::Error>> {
        Ok(Attrs::parse_pairs(pairs)?)
    }

    #[test]
    fn terms_parse_and_hold() -> TestResult {
        let a = attrs(&["camera=x100", "year=2024"])?;
        let q = |w: &[&str]| Query::parse(w, false);
        assert!(q(&["camera=x100", "year=*"])?.matches(&a));
        assert!(!q(&["camera=x100", "lens=*"])?.matches(&a));
        assert!(q(&["camera=x100", "!lens"])?.matches(&a));
        assert!(q(&["year!=2023"])?.matches(&a));
        assert!(!q(&["year!=2024"])?.matches(&a));
        assert!(q(&["lens=*", "or", "year=2024"])?.matches(&a));
        assert!(!q(&["year=\"2024\""])?.matches(&a));
        assert!(Query::parse(&["camera=x100"], true)?.matches(&attrs(&["camera=x100"])?));
        assert!(!Query::parse(&["camera=x100"], true)?.matches(&a));
        assert!(Query::parse(&["camera=x100", "year=*"], true)?.matches(&a));
        Ok(())
    }

    #[test]
    fn bad_queries_are_refused() {
        for words in [
            &["camera"][..],
            &["=x"],
            &["or", "a=1"],
            &["a=1", "or"],
            &[],
            &["a*b=1"],
        ] {
            assert!(Query::parse(words, false).is_err(), "{words:?}");
        }
    }
}
