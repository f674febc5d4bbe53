//! The query planner (`docs/ATTRIBUTES.md` §4): from a query and a namespace's space, the
//! overlay to ask and the runs of regions that can hold its answers. Every conjunction of
//! the query fixes some dimensions to one coordinate (an `=` term in a declared overlay, a
//! dimension whose every named property is fixed in an exact query on the fallback, or 0
//! where the object must lack the properties) and leaves the others whole; the planner
//! enumerates the fixed coordinates, so the runs are the regions asked and nothing else.

use super::hash::AttrHasher;
use super::place::{region_of, run_keys};
use super::query::{Conjunction, Query};
use super::space::{Layout, Space};
use super::AttrsError;
use crate::wire::KeyId;

/// Most runs of regions one conjunction is planned as: past it, the planner widens the last
/// fixed dimensions to whole ones (asking more regions, never fewer).
pub const MAX_RUNS: usize = 1024;

/// The coordinates a conjunction allows in one dimension.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    All,
    Only(u32),
}

/// Where a query is answered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The overlay asked.
    pub layout: Layout,
    /// Inclusive runs of regions, ascending, neither overlapping nor touching.
    pub runs: Vec<(u64, u64)>,
    /// Regions of the overlay.
    pub total: u64,
}

impl Plan {
    /// Regions asked.
    pub fn regions(&self) -> u64 {
        self.runs.iter().map(|(a, b)| b - a + 1).sum()
    }

    /// The inclusive key ranges of the runs, ascending.
    pub fn key_ranges(&self) -> Vec<(KeyId, KeyId)> {
        self.runs
            .iter()
            .map(|(a, b)| run_keys(*a, *b, self.total))
            .collect()
    }
}

/// Plans `query` over `space`: of the overlays that index every object any branch could
/// match, the one with the fewest regions to ask.
pub fn plan(space: &Space, hasher: &dyn AttrHasher, query: &Query) -> Result<Plan, AttrsError> {
    let mut best: Option<Plan> = None;
    for layout in space.layouts() {
        let Some(runs) = layout_runs(&layout, hasher, query) else {
            continue;
        };
        let plan = Plan {
            total: layout.regions(),
            layout,
            runs,
        };
        if best.as_ref().is_none_or(|b| plan.regions() < b.regions()) {
            best = Some(plan);
        }
    }
    best.ok_or_else(|| {
        AttrsError::Query(format!(
            "no overlay of the namespace's attribute space indexes every object `{query}` \
             can match: keep the fallback space, or name a property of an overlay with `=` \
             in every branch"
        ))
    })
}

/// The runs of `layout` a query asks, or `None` if the overlay may lack answers.
fn layout_runs(layout: &Layout, hasher: &dyn AttrHasher, query: &Query) -> Option<Vec<(u64, u64)>> {
    let mut all = Vec::new();
    for conj in &query.any_of {
        let allowed = allowed(layout, hasher, conj, query.exact)?;
        all.extend(runs(&layout.radices, allowed));
    }
    Some(merge(all))
}

/// What `conj` allows in each dimension of `layout`; `None` if an object it matches may
/// have no entry there (a declared overlay none of whose properties the conjunction gives).
pub fn allowed(
    layout: &Layout,
    hasher: &dyn AttrHasher,
    conj: &Conjunction,
    exact: bool,
) -> Option<Vec<Allowed>> {
    let positive = conj.positive_names();
    if layout.overlay == 0 {
        return Some(fallback_allowed(layout, hasher, conj, exact));
    }
    if !layout
        .properties
        .iter()
        .any(|p| positive.contains(p.as_str()))
    {
        return None;
    }
    let dims = layout.properties.iter().zip(&layout.radices);
    Some(
        dims.map(|(p, r)| match conj.fixed(p) {
            Some(v) => Allowed::Only((hasher.value_hash(v) % u64::from(*r)) as u32),
            None if conj.lacks(p) || (exact && !positive.contains(p.as_str())) => Allowed::Only(0),
            None => Allowed::All,
        })
        .collect(),
    )
}

/// The fallback (paper §3): only an exact query narrows it, since an object's other
/// properties could fall in any dimension and move its coordinate there.
fn fallback_allowed(
    layout: &Layout,
    hasher: &dyn AttrHasher,
    conj: &Conjunction,
    exact: bool,
) -> Vec<Allowed> {
    if !exact {
        return vec![Allowed::All; layout.radices.len()];
    }
    let mut dims: Vec<Option<u64>> = vec![Some(0); layout.radices.len()];
    for name in conj.positive_names() {
        let d = layout.fallback_dim(hasher, name);
        let r = u64::from(layout.radices[d]);
        dims[d] = match (dims[d], conj.fixed(name)) {
            (Some(c), Some(v)) => Some((c + hasher.value_hash(v) % r) % r),
            _ => None,
        };
    }
    dims.into_iter()
        .map(|d| d.map_or(Allowed::All, |c| Allowed::Only(c as u32)))
        .collect()
}

/// The runs of regions `allowed` covers, ascending and merged.
pub fn runs(radices: &[u32], mut allowed: Vec<Allowed>) -> Vec<(u64, u64)> {
    let total: u64 = radices.iter().map(|r| u64::from(*r)).product();
    loop {
        let Some(last) = allowed.iter().rposition(|a| *a != Allowed::All) else {
            return vec![(0, total - 1)];
        };
        let combos: u64 = allowed[..=last]
            .iter()
            .zip(radices)
            .map(|(a, r)| match a {
                Allowed::All => u64::from(*r),
                Allowed::Only(_) => 1,
            })
            .product();
        if combos > MAX_RUNS as u64 {
            allowed[last] = Allowed::All;
            continue;
        }
        let block: u64 = radices[last + 1..].iter().map(|r| u64::from(*r)).product();
        let mut out = Vec::with_capacity(combos as usize);
        let mut coords: Vec<u32> = allowed[..=last]
            .iter()
            .map(|a| match a {
                Allowed::All => 0,
                Allowed::Only(c) => *c,
            })
            .collect();
        loop {
            let base = region_of(&coords, &radices[..=last]) * block;
            out.push((base, base + block - 1));
            if !advance(&mut coords, &allowed[..=last], radices) {
                return merge(out);
            }
        }
    }
}

/// The next combination of the whole dimensions' coordinates (odometer, last fastest).
fn advance(coords: &mut [u32], allowed: &[Allowed], radices: &[u32]) -> bool {
    for d in (0..coords.len()).rev() {
        if allowed[d] != Allowed::All {
            continue;
        }
        if coords[d] + 1 < radices[d] {
            coords[d] += 1;
            return true;
        }
        coords[d] = 0;
    }
    false
}

/// Sorts runs and merges those that overlap or touch.
fn merge(mut runs: Vec<(u64, u64)>) -> Vec<(u64, u64)> {
    runs.sort_unstable();
    let mut out: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
    for (a, b) in runs {
        match out.last_mut() {
            Some(last) if a <= last.1.saturating_add(1) => last.1 = last.1.max(b),
            _ => out.push((a, b)),
        }
    }
    out
}
