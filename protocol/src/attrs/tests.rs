//! The paper's worked example (§3), and the planner's one promise checked at random: every
//! object a query matches has an entry inside the planned ranges of the chosen overlay.

use std::collections::HashMap;

use proptest::prelude::*;
use ringblob_backends::names::{AttrValue, Attrs};

use super::*;

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// The hashes the paper's example supposes: h("username") % 10 = 3, h("first") % 10 = 4,
/// h("last") % 10 = 8; h("aph") % 3 = 1, h("Alyssa") % 3 = 1, h("Hacker") % 3 = 2, and
/// footnote 2: h("aphacks") % 3 = 2.
struct PaperHasher(HashMap<&'static str, u64>);

impl PaperHasher {
    fn new() -> PaperHasher {
        PaperHasher(HashMap::from([
            ("username", 3),
            ("first", 4),
            ("last", 8),
            ("aph", 1),
            ("Alyssa", 1),
            ("Hacker", 2),
            ("aphacks", 2),
        ]))
    }
}

impl AttrHasher for PaperHasher {
    fn name_hash(&self, name: &str) -> u64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    fn value_hash(&self, value: &AttrValue) -> u64 {
        match value {
            AttrValue::Str(s) => self.0.get(s.as_str()).copied().unwrap_or(0),
            AttrValue::Int(n) => *n as u64,
        }
    }
}

fn regions_touched(words: &[&str]) -> Result<(Plan, u64), Box<dyn std::error::Error>> {
    let plan = plan(
        &Space::default(),
        &PaperHasher::new(),
        &Query::parse(words, true)?,
    )?;
    let n = plan.regions();
    Ok((plan, n))
}

#[test]
fn the_papers_worked_example() -> TestResult {
    let space = Space::default();
    let layout = &space.layouts()[0];
    assert_eq!(layout.regions(), 59_049);
    let ac = Attrs::parse_pairs(&["username=aph", "first=Alyssa", "last=Hacker"])?;
    let coords = layout.coordinates(&PaperHasher::new(), &ac);
    assert_eq!(coords, [0, 0, 0, 1, 1, 0, 0, 0, 2, 0]);

    // get({username: ANY, first: Alyssa, last: ANY}): [0,0,0,{0-2},1,0,0,0,{0-2},0].
    let (wide, n) = regions_touched(&["username=*", "first=Alyssa", "last=*"])?;
    assert_eq!(n, 9);
    let region = place::region_of(&coords, &layout.radices);
    assert!(wide.runs.iter().any(|(a, b)| (*a..=*b).contains(&region)));
    // get({first: Alyssa, last: ANY}): no username, [0,0,0,0,1,0,0,0,{0-2},0].
    let (_, n) = regions_touched(&["first=Alyssa", "last=*"])?;
    assert_eq!(n, 3);
    // get({username: aphacks, first: Alyssa, last: ANY}): [0,0,0,2,1,0,0,0,{0-2},0].
    let (narrow, n) = regions_touched(&["username=aphacks", "first=Alyssa", "last=*"])?;
    assert_eq!(n, 3);
    assert_eq!(narrow.runs.len(), 3);
    let first = place::region_of(&[0, 0, 0, 2, 1, 0, 0, 0, 0, 0], &layout.radices);
    assert_eq!(narrow.runs[0], (first, first));
    // The object itself is found by the fully specified query, in exactly one region.
    let (exact, n) = regions_touched(&["username=aph", "first=Alyssa", "last=Hacker"])?;
    assert_eq!((n, exact.runs[0].0), (1, region));
    Ok(())
}

#[test]
fn a_declared_overlay_narrows_a_query_that_is_not_exact() -> TestResult {
    let space = Space::from_json(r#"{"overlays":[{"camera":9,"year":4}]}"#)?;
    let q = Query::parse(&["camera=x100"], false)?;
    let p = plan(&space, &Sha256Hasher, &q)?;
    assert_eq!((p.layout.overlay, p.regions(), p.total), (1, 4, 36));
    let q = Query::parse(&["camera=x100", "year=2024"], false)?;
    assert_eq!(plan(&space, &Sha256Hasher, &q)?.regions(), 1);
    // Nothing of the overlay named: the fallback, every region.
    let q = Query::parse(&["lens=*"], false)?;
    let p = plan(&space, &Sha256Hasher, &q)?;
    assert_eq!((p.layout.overlay, p.regions()), (0, 59_049));
    let none = Space::from_json(r#"{"overlays":[{"camera":9}],"fallback":null}"#)?;
    assert!(plan(&none, &Sha256Hasher, &q).is_err());
    Ok(())
}

#[test]
fn a_plan_past_the_run_limit_widens_instead_of_failing() -> TestResult {
    // Fixing only the last of many dimensions would need 2^12 · … runs.
    let space =
        Space::from_json(r#"{"overlays":[{"a":16,"b":16,"c":16,"d":16,"z":16}],"fallback":null}"#)?;
    let q = Query::parse(&["z=1"], false)?;
    let p = plan(&space, &Sha256Hasher, &q)?;
    assert!(p.runs.len() <= plan::MAX_RUNS);
    assert_eq!(p.regions(), p.total);
    let q = Query::parse(&["a=1"], false)?;
    assert_eq!(plan(&space, &Sha256Hasher, &q)?.runs.len(), 1);
    Ok(())
}

fn value() -> impl Strategy<Value = AttrValue> {
    prop_oneof![
        (0i64..4).prop_map(AttrValue::Int),
        "[ab]{1,2}".prop_map(AttrValue::Str),
    ]
}

fn object() -> impl Strategy<Value = Attrs> {
    proptest::collection::btree_map("p[0-5]", value(), 1..5).prop_map(|m| m.into_iter().collect())
}

fn term() -> impl Strategy<Value = String> {
    ("p[0-5]", value(), 0..4).prop_map(|(n, v, kind)| match kind {
        0 | 1 => format!("{n}={v}"),
        2 => format!("{n}=*"),
        _ => format!("!{n}"),
    })
}

proptest! {
    #[test]
    fn every_match_lies_in_the_plan(
        objects in proptest::collection::vec(object(), 1..30),
        words in proptest::collection::vec(term(), 1..4),
        exact in any::<bool>(),
        declared in any::<bool>(),
    ) {
        let space = match declared {
            true => Space::from_json(r#"{"overlays":[{"p0":3,"p1":5},{"p2":4}]}"#).map_err(|e| TestCaseError::fail(e.to_string()))?,
            false => Space::default(),
        };
        let query = Query::parse(&words, exact).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let p = plan(&space, &Sha256Hasher, &query).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let ranges = p.key_ranges();
        for (i, attrs) in objects.iter().enumerate() {
            if !query.matches(attrs) {
                continue;
            }
            let name = format!("o{i}");
            let placed = placements(&space, &Sha256Hasher, "ns", name.as_bytes(), attrs);
            let key = placed.iter().find(|(o, _)| *o == p.layout.overlay).map(|(_, k)| *k);
            let key = key.ok_or_else(|| TestCaseError::fail("no entry in the planned overlay"))?;
            prop_assert!(ranges.iter().any(|(a, b)| *a <= key && key <= *b), "{query} missed {attrs:?}");
        }
    }
}
