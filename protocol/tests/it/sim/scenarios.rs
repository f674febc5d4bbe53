//! The simulated scenarios. Each runs a fixed list of seeds (fast, in CI); more with
//! `RINGBLOB_SIM_SEEDS=N` (seeds 1..=N, or `A-B`) or a time-boxed random search with
//! `RINGBLOB_SIM_SEARCH_SECS=S`; `RINGBLOB_SIM_SEED=N` replays one. A failure prints the
//! one-line command that replays it.

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::time::Instant;

use rand::Rng;

use super::checks::*;
use super::reads::check_replicated_reads;
use super::repair::repair_all;
use super::world::{Event, Sim, Stats, GROUPS};

const KEYS: usize = 1500;
const BOOT_MS: u64 = 20_000;
const CHAOS_MS: u64 = 40_000;
const CONVERGE_LIMIT_MS: u64 = 60_000;
const MOVE_LIMIT_MS: u64 = 60_000;
/// Each node's clock is off by up to this much during the chaos runs.
const CHAOS_SKEW_MS: u64 = 200;

/// The seeds to run: one to replay, `1..=N`, the fixed CI list, plus random ones for the
/// search's time box.
fn seeds_to_run(fixed: &[u64]) -> Vec<u64> {
    let env = |name| std::env::var(name).ok().and_then(|s| s.parse::<u64>().ok());
    if let Some(seed) = env("RINGBLOB_SIM_SEED") {
        return vec![seed];
    }
    if let Ok(spec) = std::env::var("RINGBLOB_SIM_SEEDS") {
        let (from, to) = match spec.split_once('-') {
            Some((a, b)) => (a.parse().unwrap_or(1), b.parse().unwrap_or(0)),
            None => (1, spec.parse().unwrap_or(0)),
        };
        return (from..=to).collect();
    }
    fixed.to_vec()
}

/// Random seeds to try until `RINGBLOB_SIM_SEARCH_SECS` (default 0) have passed.
fn search_deadline() -> Option<Instant> {
    let secs = std::env::var("RINGBLOB_SIM_SEARCH_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())?;
    Some(Instant::now() + std::time::Duration::from_secs(secs))
}

fn replay(test: &str, seed: u64) -> String {
    format!(
        "RINGBLOB_SIM_SEED={seed} cargo test -p ringblob-protocol --test it -- --exact \
         sim::scenarios::{test}"
    )
}

/// What one chaos run measured.
struct Report {
    acked: usize,
    converged_ms: u64,
    moved_ms: u64,
    repaired: u64,
    read_repaired: u64,
    chaos_reads: u64,
    group_lags: usize,
    missed_nodes: usize,
    sim_ms: u64,
    node_ms: u64,
    stats: Stats,
}

/// 54 nodes in 3 groups; 40 s of crashes, restarts, joins, leaves, partitions, full and
/// failing disks, 2 % loss and 1 % duplication while clients write and remove at quorum;
/// then every node restarts,
/// the network heals, and the invariants must hold within bounded simulated time.
fn chaos_run(seed: u64, broken_movement: bool) -> Result<Report, String> {
    let mut sim = Sim::new(seed, KEYS);
    sim.broken_movement = broken_movement;
    sim.max_skew_ms = CHAOS_SKEW_MS;
    let count = GROUPS * sim.nodes_per_group;
    bootstrap(&mut sim, count);
    sim.drop_rate = 0.02;
    sim.dup_rate = 0.01;
    let chaos_end = sim.now + CHAOS_MS;
    let mut next_chaos = sim.now + 1000;
    let mut node_ms = 0u64;
    // Every run has at least one join (the random steps may draw none).
    sim.stats.joins += 1;
    let group = sim.rng.gen_range(0..GROUPS);
    let joiner = sim.add_node(group);
    sim.boot(joiner);
    sim.run_until(chaos_end, &mut |s| {
        s.client_write();
        s.client_read();
        node_ms += 20 * (0..s.nodes.len()).filter(|i| s.is_up(*i)).count() as u64;
        if s.now >= next_chaos {
            chaos_step(s);
            next_chaos = s.now + s.rng.gen_range(500..2500);
        }
    });
    sim.drop_rate = 0.0;
    sim.dup_rate = 0.0;
    sim.partition = None;
    for node in 0..sim.nodes.len() {
        sim.heal_disk(node);
        sim.restart(node);
    }
    let start = sim.now;
    let converged = wait_for(&mut sim, CONVERGE_LIMIT_MS, tables_agree);
    let converged_ms = converged.ok_or_else(|| {
        format!(
            "route tables did not converge: {}",
            table_disagreement(&sim)
        )
    })? - start;
    let start = sim.now;
    let moved_ms = wait_for(&mut sim, MOVE_LIMIT_MS, movement_done)
        .ok_or_else(|| "transfers did not finish".to_string())?
        - start;
    if let Some(wrong) = sim.chaos_reads.1.first() {
        return Err(format!(
            "{} of {} reads during the chaos that heard from a quorum answered older than \
             acknowledged; the first: {wrong}",
            sim.chaos_reads.1.len(),
            sim.chaos_reads.0
        ));
    }
    let (chaos_reads, group_lags) = (sim.chaos_reads.0, sim.group_lags.len());
    check_tables(&sim)?;
    check_movement(&sim)?;
    check_acking_groups(&sim)?;
    check_quorum(&sim)?;
    // Half the keys are read (and read-repaired) before the repair round, so both kinds of
    // repair have work; all of them after it.
    let read_repaired = check_replicated_reads(&sim, |k| k[0] % 2 == 0)?;
    let tally = repair_all(&mut sim)?;
    check_every_owner(&sim)?;
    check_replicated_reads(&sim, |_| true)?;
    check_removed_stay_removed(&sim)?;
    check_real_time_order(&sim)?;
    if let Some(e) = sim.errors.first() {
        return Err(format!(
            "{} inputs failed, the first: {e}",
            sim.errors.len()
        ));
    }
    let stats = std::mem::take(&mut sim.stats);
    if stats.crashes == 0
        || stats.joins == 0
        || stats.copies_stored == 0
        || stats.removes_acked == 0
    {
        return Err(format!(
            "the chaos was too mild to test anything: {stats:?}"
        ));
    }
    let live = sim.nodes.iter().filter(|n| n.cluster.is_some()).count() as u64;
    node_ms += (sim.now - chaos_end) * live;
    Ok(Report {
        acked: sim.acked.len(),
        converged_ms,
        moved_ms,
        repaired: tally.records_pushed + tally.removes_pushed,
        read_repaired,
        chaos_reads,
        group_lags,
        missed_nodes: sim.nodes.iter().filter(|n| n.missed_writes).count(),
        sim_ms: sim.now,
        node_ms,
        stats,
    })
}

/// Starts `count` nodes one at a time, round-robin over the groups, and lets them settle.
fn bootstrap(sim: &mut Sim, count: u32) {
    for i in 0..count {
        let node = sim.add_node(i % GROUPS);
        sim.boot(node);
        let until = sim.now + 250;
        sim.run_until(until, &mut |_| {});
    }
    let until = sim.now + BOOT_MS;
    sim.run_until(until, &mut |_| {});
}

/// One random fault or membership change.
fn chaos_step(sim: &mut Sim) {
    let up: Vec<usize> = (0..sim.nodes.len()).filter(|i| sim.is_up(*i)).collect();
    let down = sim
        .nodes
        .iter()
        .filter(|n| n.cluster.is_none() && !n.left)
        .count();
    let Some(&victim) = up.get(sim.rng.gen_range(0..up.len().max(1))) else {
        return;
    };
    match sim.rng.gen_range(0..10) {
        0..=3 if down < 4 => {
            let down_ms = sim.rng.gen_range(1_000..15_000);
            sim.crash(victim, down_ms);
        }
        4 | 5 if sim.stats.joins < 6 => {
            sim.stats.joins += 1;
            let group = sim.rng.gen_range(0..GROUPS);
            let node = sim.add_node(group);
            sim.boot(node);
        }
        6 if sim.stats.leaves < 3 => {
            sim.stats.leaves += 1;
            sim.drive(victim, |c| c.leave());
            // Half the leaves are cancelled (`undrain`) soon after, most of them mid-way.
            if sim.rng.gen_bool(0.5) {
                let after_ms = sim.rng.gen_range(5..400);
                sim.at(after_ms, Event::Stay { node: victim });
            }
        }
        7 if sim.stats.partitions < 3 && sim.partition.is_none() => {
            sim.stats.partitions += 1;
            let side: BTreeSet<String> = sim
                .nodes
                .iter()
                .filter(|_| sim.rng.gen_bool(0.3))
                .map(|n| n.addr.clone())
                .collect();
            sim.partition = Some(side);
            let heal_ms = sim.rng.gen_range(2_000..8_000);
            sim.at(heal_ms, Event::Heal);
        }
        8 if sim.stats.disks_full < 4 => {
            sim.stats.disks_full += 1;
            if let Some(n) = sim.nodes.get(victim) {
                n.faults.lock().full = true;
            }
            let heal_ms = sim.rng.gen_range(1_000..6_000);
            sim.at(heal_ms, Event::DiskHeal { node: victim });
        }
        9 if sim.stats.disks_failing < 4 => {
            sim.stats.disks_failing += 1;
            if let Some(n) = sim.nodes.get(victim) {
                n.faults.lock().error_rate = 0.05;
            }
            let heal_ms = sim.rng.gen_range(1_000..6_000);
            sim.at(heal_ms, Event::DiskHeal { node: victim });
        }
        _ => {}
    }
}

/// Runs until `done` holds (checked every 500 ms); the time it held, or `None` at the limit.
fn wait_for(sim: &mut Sim, limit_ms: u64, done: fn(&Sim) -> bool) -> Option<u64> {
    let end = sim.now + limit_ms;
    while sim.now < end {
        if done(sim) {
            return Some(sim.now);
        }
        let until = sim.now + 500;
        sim.run_until(until, &mut |_| {});
    }
    done(sim).then_some(sim.now)
}

#[test]
fn sim_cluster_survives_chaos() {
    let mut seeds = seeds_to_run(&[1, 2, 3]);
    let deadline = search_deadline();
    let mut rng = rand::thread_rng();
    let (mut node_ms, started) = (0u64, Instant::now());
    let mut i = 0;
    while i < seeds.len() || deadline.is_some_and(|d| Instant::now() < d) {
        let seed = match seeds.get(i) {
            Some(s) => *s,
            None => {
                let s = rng.gen::<u32>() as u64;
                seeds.push(s);
                s
            }
        };
        i += 1;
        let run_started = Instant::now();
        match chaos_run(seed, false) {
            Ok(r) => {
                node_ms += r.node_ms;
                println!(
                    "sim seed {seed}: {} acknowledged keys, tables converged in {} ms, moves \
                     done {} ms later, read repair wrote {} copies, repair {} more ({} nodes missed \
                     writes); {} reads during the chaos ({} group answers behind); \
                     {} simulated s; {:?}; {:.1} s",
                    r.acked,
                    r.converged_ms,
                    r.moved_ms,
                    r.read_repaired,
                    r.repaired,
                    r.missed_nodes,
                    r.chaos_reads,
                    r.group_lags,
                    r.sim_ms / 1000,
                    r.stats,
                    run_started.elapsed().as_secs_f64()
                );
            }
            Err(why) => panic!(
                "cluster simulation failed with seed {seed}: {why}\nreplay: {}",
                replay("sim_cluster_survives_chaos", seed)
            ),
        }
    }
    let minutes = started.elapsed().as_secs_f64() / 60.0;
    println!(
        "sim: {} seeds, {:.1} simulated node-hours in {:.2} min ({:.1} node-hours per minute)",
        seeds.len(),
        node_ms as f64 / 3.6e6,
        minutes,
        node_ms as f64 / 3.6e6 / minutes.max(1e-9)
    );
}

/// The broken-movement knob must make the chaos run fail: the checks can see lost data.
#[test]
fn sim_checks_catch_a_hand_over_that_loses_copies() {
    let outcome = chaos_run(1, true);
    assert!(
        outcome.is_err(),
        "a hand-over that loses every 7th copy went unnoticed"
    );
    println!("broken hand-over caught: {:?}", outcome.err());
}

/// Clocks off by up to 500 ms: 6 nodes, 12 hot keys written and removed at quorum every
/// 20 ms for 20 s. Operations more than twice the skew apart keep their real-time order
/// (checked for every pair); closer ones may not — the run must show some, or the check
/// would prove nothing — and the replicas still agree on the newest version after repair.
#[test]
fn sim_clock_skew_reorders_only_operations_closer_than_twice_the_skew() {
    for seed in seeds_to_run(&[1, 2]) {
        let mut sim = Sim::new(seed, 12);
        sim.max_skew_ms = 500;
        sim.nodes_per_group = 2;
        bootstrap(&mut sim, 6);
        let until = sim.now + 20_000;
        sim.run_until(until, &mut |s| s.client_write());
        let until = sim.now + 5_000;
        sim.run_until(until, &mut |_| {});
        let outcome = (|| {
            check_quorum(&sim)?;
            repair_all(&mut sim)?;
            check_every_owner(&sim)?;
            check_removed_stay_removed(&sim)?;
            check_real_time_order(&sim)
        })();
        match outcome {
            Ok(reordered) => {
                println!(
                    "sim seed {seed}: {} acknowledged operations, {reordered} pairs closer \
                     than 2 x 500 ms ordered by the clocks against real time",
                    sim.history.len()
                );
                assert!(reordered > 0, "seed {seed}: the skew never mattered");
            }
            Err(why) => panic!(
                "seed {seed}: {why}\nreplay: {}",
                replay(
                    "sim_clock_skew_reorders_only_operations_closer_than_twice_the_skew",
                    seed
                )
            ),
        }
    }
}

/// Each group's nodes' shares of its ring, from the first live table.
fn group_shares(sim: &Sim) -> BTreeMap<u32, Vec<(String, f64)>> {
    let Some((_, table)) = live_tables(sim).into_iter().next() else {
        return BTreeMap::new();
    };
    let mut out: BTreeMap<u32, Vec<(String, f64)>> = BTreeMap::new();
    for (group, ring) in table.rings() {
        for (ix, share) in ring.shares() {
            let name = usize::try_from(ix.0)
                .ok()
                .and_then(|i| table.nodes.get(i))
                .map_or_else(String::new, |n| n.name.clone());
            out.entry(group).or_default().push((name, share));
        }
    }
    out
}

fn balanced(sim: &Sim) -> bool {
    let factor = ringblob_protocol::cluster::BALANCE_FACTOR;
    tables_agree(sim)
        && movement_done(sim)
        && group_shares(sim).values().all(|shares| {
            let mean = 1.0 / shares.len() as f64;
            shares
                .iter()
                .all(|(_, s)| *s * factor >= mean && *s <= mean * factor)
        })
}

/// Groups of 3, 6 and 10 nodes whose nodes all start at the same moment (each choosing IDs
/// against a ring without the others) end with every node's share within 1.25x of the mean,
/// the shipping cluster logic re-choosing IDs and handing data over until they do.
#[test]
fn sim_concurrent_joins_end_balanced() {
    for seed in seeds_to_run(&[1, 2, 3]) {
        let mut sim = Sim::new(seed, 200);
        let first = sim.add_node(1);
        sim.boot(first);
        let until = sim.now + 250;
        sim.run_until(until, &mut |_| {});
        let mut rest = Vec::new();
        for (group, size) in [(1u32, 3usize), (2, 6), (3, 10)] {
            let already = usize::from(group == 1);
            for _ in already..size {
                rest.push(sim.add_node(group));
            }
        }
        // All at once: no simulated time passes between these boots.
        for node in rest {
            sim.boot(node);
        }
        let until = sim.now + 5_000;
        sim.run_until(until, &mut |_| {});
        let before = group_shares(&sim);
        let done = wait_for(&mut sim, 180_000, balanced);
        assert!(
            done.is_some(),
            "seed {seed}: rings not balanced: {:?} (after the joins: {before:?})\nreplay: {}",
            group_shares(&sim),
            replay("sim_concurrent_joins_end_balanced", seed)
        );
        println!(
            "sim seed {seed}: concurrent joins balanced at {} ms",
            done.unwrap_or(0)
        );
    }
}

/// Whether every live node's table shows `name` alive.
fn seen_alive_everywhere(sim: &Sim, name: &str) -> bool {
    live_tables(sim)
        .iter()
        .all(|(_, t)| t.node(name).is_some_and(|n| n.alive))
}

/// A member that stops answering keeps its ranges (its route-table entry stays alive) for
/// the grace period after SWIM declares it down, and loses them once the grace is over; one
/// that comes back within the grace never loses them.
#[test]
fn sim_a_down_node_keeps_its_ranges_for_the_grace_period() {
    let grace = ringblob_protocol::cluster::DEFAULT_DOWN_GRACE.as_millis() as u64;
    for seed in seeds_to_run(&[1, 2, 3]) {
        let mut sim = Sim::new(seed, 0);
        for _ in 0..3 {
            let node = sim.add_node(1);
            sim.boot(node);
            let until = sim.now + 500;
            sim.run_until(until, &mut |_| {});
        }
        let until = sim.now + 5_000;
        sim.run_until(until, &mut |_| {});
        let name = sim.nodes[2].name.clone();
        assert!(tables_agree(&sim) && seen_alive_everywhere(&sim, &name));
        sim.crash(2, grace);
        let until = sim.now + grace - 1_000;
        sim.run_until(until, &mut |_| {});
        assert!(
            seen_alive_everywhere(&sim, &name),
            "seed {seed}: {name} marked dead within the grace period"
        );
        let until = sim.now + 10_000;
        sim.run_until(until, &mut |_| {});
        assert!(
            seen_alive_everywhere(&sim, &name),
            "seed {seed}: back in time"
        );
        sim.crash(2, 1_000_000);
        let until = sim.now + grace + 20_000;
        sim.run_until(until, &mut |_| {});
        let dead = live_tables(&sim)
            .iter()
            .all(|(_, t)| t.node(&name).is_some_and(|n| !n.alive));
        assert!(
            dead,
            "seed {seed}: {name} still owns its ranges after the grace period"
        );
    }
}

/// A leave asked for while the group's ring is still moving (a third node has just
/// joined) waits until the ring has settled — the node stays active, its leave requested —
/// then starts: the node turns *leaving* in every table, hands everything over, and ends
/// dead in every table, owning nothing.
#[test]
fn sim_a_leave_waits_for_the_ring_to_settle_then_ends_dead_everywhere() {
    use ringblob_protocol::cluster::Phase;
    const LEAVER: usize = 1;
    for seed in seeds_to_run(&[1, 2, 3]) {
        let mut sim = Sim::new(seed, 0);
        for _ in 0..2 {
            let node = sim.add_node(1);
            sim.boot(node);
        }
        let phase = |sim: &Sim| sim.nodes[LEAVER].cluster.as_ref().map(|c| c.phase());
        let end = sim.now + 30_000;
        while sim.now < end && phase(&sim) != Some(Phase::Active) {
            let until = sim.now + 100;
            sim.run_until(until, &mut |_| {});
        }
        let node = sim.add_node(1);
        sim.boot(node);
        let until = sim.now + 200;
        sim.run_until(until, &mut |_| {});
        let name = sim.nodes[LEAVER].name.clone();
        sim.drive(LEAVER, |c| c.leave());
        let requested = sim.nodes[LEAVER]
            .cluster
            .as_ref()
            .is_some_and(|c| c.leave_requested());
        assert!(
            requested && phase(&sim) == Some(Phase::Active),
            "seed {seed}: the leave started while the ring was moving ({:?})",
            phase(&sim)
        );
        let mut seen_leaving = false;
        let end = sim.now + 60_000;
        while sim.now < end && !sim.nodes[LEAVER].left {
            let until = sim.now + 100;
            sim.run_until(until, &mut |_| {});
            seen_leaving |= live_tables(&sim)
                .iter()
                .any(|(_, t)| t.node(&name).is_some_and(|n| n.leaving && !n.alive));
        }
        assert!(sim.nodes[LEAVER].left, "seed {seed}: the leave never ended");
        assert!(seen_leaving, "seed {seed}: never marked leaving");
        let until = sim.now + 10_000;
        sim.run_until(until, &mut |_| {});
        let dead = live_tables(&sim)
            .iter()
            .filter(|(n, _)| n.name != name)
            .all(|(_, t)| t.node(&name).is_some_and(|n| !n.alive && !n.leaving));
        assert!(
            dead,
            "seed {seed}: {name} not dead in every table after leaving"
        );
        // The leave finished: its entry says so (no IDs), and no node still awaits a range
        // from it — it stopped the moment it left (as `ringblob node leave` stops the
        // process), so a node whose hand-over check had not confirmed it yet would answer
        // reads of keys it lacks UNAVAILABLE ("down and has not handed it over") for hours.
        for (n, t) in live_tables(&sim) {
            let entry = t.node(&name);
            assert!(
                entry.is_some_and(|e| e.has_left()),
                "seed {seed}: {} sees {name} as {entry:?}",
                n.name
            );
            let awaited = n.incoming.awaited(sim.now);
            assert!(
                awaited.iter().all(|a| a.from != name),
                "seed {seed}: {} still awaits {awaited:?}",
                n.name
            );
        }
    }
}

/// A leave cancelled half-way (`ringblob node undrain`) while clients write: the node ends
/// alive and not leaving in every table, owns a share of its group's ring again, and no
/// acknowledged write is lost or left with fewer owners than its quorum — the ranges it
/// handed out come back to it and their transfers end.
const UNDRAIN_TEST: &str = "sim_an_undrain_half_way_takes_the_ranges_back_and_loses_nothing";

#[test]
fn sim_an_undrain_half_way_takes_the_ranges_back_and_loses_nothing() {
    use ringblob_protocol::cluster::Phase;
    const LEAVER: usize = 0;
    for seed in seeds_to_run(&[1, 2, 3]) {
        let mut sim = booted_under_traffic(seed, 1_000);
        let writes = traffic;
        let name = sim.nodes[LEAVER].name.clone();
        let group = sim.nodes[LEAVER].group;
        sim.drive(LEAVER, |c| c.leave());
        let phase = |sim: &Sim| sim.nodes[LEAVER].cluster.as_ref().map(|c| c.phase());
        let end = sim.now + 30_000;
        while sim.now < end && phase(&sim) != Some(Phase::Leaving) {
            let until = sim.now + 50;
            sim.run_until(until, &mut |s| writes(s));
        }
        assert_eq!(
            phase(&sim),
            Some(Phase::Leaving),
            "seed {seed}: the leave did not start"
        );
        // Part of the hand-over happens, then the operator changes their mind.
        let end = sim.now + 10_000;
        while sim.now < end && sim.nodes[LEAVER].streams.is_empty() {
            let until = sim.now + 5;
            sim.run_until(until, &mut |s| writes(s));
        }
        assert!(
            !sim.nodes[LEAVER].streams.is_empty(),
            "seed {seed}: the hand-over never started streaming"
        );
        assert!(
            !sim.nodes[LEAVER].left,
            "seed {seed}: left before the undrain"
        );
        sim.drive(LEAVER, |c| c.stay());
        let until = sim.now + 3_000;
        sim.run_until(until, &mut |s| writes(s));
        let start = sim.now;
        wait_for(&mut sim, CONVERGE_LIMIT_MS, tables_agree)
            .ok_or_else(|| {
                format!(
                    "seed {seed}: tables did not converge: {}",
                    table_disagreement(&sim)
                )
            })
            .unwrap_or_else(|e| panic!("{e}\n{}", replay(UNDRAIN_TEST, seed)));
        wait_for(&mut sim, MOVE_LIMIT_MS, movement_done).unwrap_or_else(|| {
            panic!(
                "seed {seed}: transfers did not finish after {} ms",
                sim.now - start
            )
        });
        assert!(
            !sim.nodes[LEAVER].left,
            "seed {seed}: the node left after all"
        );
        for (n, t) in live_tables(&sim) {
            let entry = t.node(&name);
            assert!(
                entry.is_some_and(|e| e.alive && !e.leaving),
                "seed {seed}: {} sees {name} as {entry:?}",
                n.name
            );
        }
        let share = group_shares(&sim)
            .get(&group)
            .and_then(|shares| shares.iter().find(|(n, _)| *n == name).map(|(_, s)| *s))
            .unwrap_or(0.0);
        assert!(
            share > 0.0,
            "seed {seed}: {name} owns nothing after the undrain"
        );
        let checked = check_tables(&sim)
            .and_then(|()| check_movement(&sim))
            .and_then(|()| check_quorum(&sim))
            .and_then(|()| repair_all(&mut sim).map(|_| ()))
            .and_then(|()| check_every_owner(&sim))
            .and_then(|()| check_removed_stay_removed(&sim));
        if let Err(e) = checked {
            panic!("seed {seed}: {e}\n{}", replay(UNDRAIN_TEST, seed));
        }
        assert!(sim.errors.is_empty(), "seed {seed}: {:?}", sim.errors);
        assert!(!sim.acked.is_empty(), "seed {seed}: nothing was written");
    }
}

/// A node joins while clients write and read every group alone: the ranges it takes over
/// are read through to their previous owners until those confirm the hand-over is done
/// (`check_handovers`, the node's `handover_check.rs`), and no read of a group that
/// acknowledged a write answers older meanwhile — ending a read-through too early would.
#[test]
fn sim_a_joins_read_through_ends_only_once_its_previous_owner_is_done() {
    for seed in seeds_to_run(&[1, 2, 3]) {
        let mut sim = booted_under_traffic(seed, 20_000);
        let writes = traffic;
        let confirmed_before = sim.stats.handovers_confirmed;
        let joiner = sim.add_node(0);
        sim.boot(joiner);
        let until = sim.now + 10_000;
        sim.run_until(until, &mut |s| writes(s));
        wait_for(&mut sim, MOVE_LIMIT_MS, movement_done)
            .unwrap_or_else(|| panic!("seed {seed}: transfers did not finish"));
        let until = sim.now + 2_000;
        sim.run_until(until, &mut |s| writes(s));
        println!(
            "sim seed {seed}: {} reads, {:?}",
            sim.chaos_reads.0, sim.stats
        );
        assert!(
            sim.stats.handovers_confirmed > confirmed_before,
            "seed {seed}: no hand-over was confirmed: {:?}",
            sim.stats
        );
        assert!(
            sim.nodes[joiner].incoming.awaited(sim.now).is_empty(),
            "seed {seed}: the joiner still awaits ranges after the move"
        );
        assert_eq!(
            sim.stats.lags_in_flight, 0,
            "seed {seed}: group reads answered older during the move"
        );
        assert!(
            sim.group_lags.is_empty(),
            "seed {seed}: {:?}",
            sim.group_lags
        );
        assert!(sim.errors.is_empty(), "seed {seed}: {:?}", sim.errors);
    }
}

/// Clients write and read at quorum (one step of each per tick).
fn traffic(s: &mut Sim) {
    s.client_write();
    s.client_read();
}

/// A cluster of every group's nodes, booted, after `ms` of client traffic.
fn booted_under_traffic(seed: u64, ms: u64) -> Sim {
    let mut sim = Sim::new(seed, KEYS);
    let count = GROUPS * sim.nodes_per_group;
    bootstrap(&mut sim, count);
    let until = sim.now + ms;
    sim.run_until(until, &mut |s| traffic(s));
    sim
}

/// Three nodes join one group at the same instant while clients write and read every group
/// alone. The nodes' tables go through different versions (one may never see the version in
/// which another node owned a range), so a key written to one owner can be on its way to
/// the next from a node that the reader's own hand-over does not name. Reads follow the
/// data along the chain of hand-overs (`IncomingRanges::holder`, as the node does): no group
/// that acknowledged a write answers `NOT_FOUND` while one of its nodes holds it, and every
/// acknowledged change reaches its groups' final owners.
///
/// The seeds are ones where the chain used to end early (3, 2 and 3 such misses before
/// 2026-12-07: a node forgot the range it gave away once its new owner gave it on). Seeds
/// 1–24 show two misses left: seed 11 while tables of one version named three different
/// owners at once, and seed 22 where the previous owner's own table had skipped the
/// version in which a third node owned the range (only that node, sending it on, knows it
/// holds the key) — the documented limit of reads in one group during movement (README,
/// Known limitations). Older answers while tables disagree are counted in `group_lags`,
/// not failed.
#[test]
fn sim_joins_at_one_instant_keep_every_group_readable_alone() {
    for seed in seeds_to_run(&[3, 5, 6]) {
        let mut sim = booted_under_traffic(seed, 20_000);
        let joiners: Vec<usize> = (0..3).map(|_| sim.add_node(1)).collect();
        for &j in &joiners {
            sim.boot(j);
        }
        let until = sim.now + 10_000;
        sim.run_until(until, &mut |s| traffic(s));
        wait_for(&mut sim, MOVE_LIMIT_MS, movement_done)
            .unwrap_or_else(|| panic!("seed {seed}: transfers did not finish"));
        println!(
            "sim seed {seed}: {} reads, {} group misses, {} group lags, {:?}",
            sim.chaos_reads.0,
            sim.group_misses.len(),
            sim.group_lags.len(),
            sim.stats
        );
        let checked = check_tables(&sim)
            .and_then(|()| check_movement(&sim))
            .and_then(|()| check_acking_groups(&sim));
        if let Err(e) = checked {
            panic!("seed {seed}: {e}\n{}", replay(JOINS_TEST, seed));
        }
        assert!(
            sim.group_misses.is_empty(),
            "seed {seed}: {:?}\n{}",
            sim.group_misses,
            replay(JOINS_TEST, seed)
        );
        assert!(sim.errors.is_empty(), "seed {seed}: {:?}", sim.errors);
    }
}

const JOINS_TEST: &str = "sim_joins_at_one_instant_keep_every_group_readable_alone";
