//! Experiments are plug-ins: a toy experiment defined here, in one file, is
//! added to the registry with one line and gets the subcommand, flags
//! derived from its config table, its config table, shards and merge, and
//! show-config, with no other edit.

use lottery_tangent::config::Experiment as Base;
use lottery_tangent::paths::{write_json, write_text, RunDir};
use lottery_tangent::report::verdict::Claim;
use lottery_tangent::runner::{cli, Experiment, Registry, UnitEnv};
use lottery_tangent::Result;
use serde::{Deserialize, Serialize};

/// The toy's config table `[toy]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct ToyConfig {
    seeds: Vec<u64>,
    scale: f64,
}

impl Default for ToyConfig {
    fn default() -> Self {
        ToyConfig {
            seeds: vec![0, 1, 2],
            scale: 1.0,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct ToySummary {
    values: Vec<f64>,
}

/// Units run by this process with scale 3 (the growth test's).
static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// Each unit measures its seed times the scale.
struct Toy;

impl Experiment for Toy {
    const NAME: &'static str = "toy";
    const ABOUT: &'static str = "A toy experiment";
    const GROWS: &'static [&'static str] = &["seeds"];
    type Base = Base;
    type Config = ToyConfig;
    type Unit = u64;
    type Record = f64;
    type Summary = ToySummary;

    fn units(_: &Base, cfg: &ToyConfig) -> Result<Vec<u64>> {
        lottery_tangent::runner::check_seeds(&cfg.seeds, "toy.seeds")?;
        Ok(cfg.seeds.clone())
    }
    fn unit_key(u: &u64) -> String {
        format!("seed_{u}")
    }
    fn run_unit(_: &Base, cfg: &ToyConfig, u: &u64, _: &UnitEnv) -> Result<f64> {
        if cfg.scale == 3.0 {
            RUNS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        Ok(*u as f64 * cfg.scale)
    }
    fn summarize(_: &Base, _: &ToyConfig, values: Vec<f64>) -> Result<ToySummary> {
        Ok(ToySummary { values })
    }
    fn write_report(dir: &RunDir, s: &ToySummary) -> Result<()> {
        write_json(&dir.summary_json(), s)?;
        write_text(&dir.report_md(), &format!("# toy\n\n{:?}\n", s.values))
    }
    fn claims(_: &ToySummary) -> Vec<Claim> {
        vec![]
    }
    fn console(s: &ToySummary) -> String {
        format!("{:?}\n", s.values)
    }
    fn banner(base: &Base, cfg: &ToyConfig) -> String {
        format!("{}: toy, seeds {:?}", base.config.name, cfg.seeds)
    }
}

fn registry() -> Registry {
    // The one line that adds the experiment.
    lottery_tangent::experiments::registry().with::<Toy>()
}

fn ltk(reg: &Registry, args: &[&str]) -> Result<()> {
    let m = cli::command(reg)
        .try_get_matches_from(std::iter::once("ltk").chain(args.iter().copied()))
        .map_err(|e| lottery_tangent::Error::invalid("command line", "valid", e))?;
    cli::dispatch(reg, &m)
}

fn values(dir: &std::path::Path) -> Vec<f64> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    v["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

#[test]
fn a_toy_experiment_is_one_file_and_one_line() {
    let reg = registry();
    let help = cli::command(&reg).render_long_help().to_string();
    assert!(help.contains("toy") && help.contains("A toy experiment"), "{help}");
    let sub = cli::command(&reg)
        .find_subcommand_mut("toy")
        .unwrap()
        .render_long_help()
        .to_string();
    assert!(
        sub.contains("--seeds") && sub.contains("--scale") && sub.contains("[toy]"),
        "{sub}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    // Flags derived from the table's keys.
    ltk(&reg, &["toy", "--out", out, "-q", "--seeds", "1,2,5", "--scale", "0.5"]).unwrap();
    assert_eq!(values(&tmp.path().join("toy")), vec![0.5, 1.0, 2.5]);
    // A config file with a [toy] table and --set.
    let cfg = tmp.path().join("toy.toml");
    std::fs::write(&cfg, "name = \"t2\"\n[toy]\nseeds = [3]\n").unwrap();
    ltk(
        &reg,
        &[
            "toy",
            "--config",
            cfg.to_str().unwrap(),
            "--set",
            "toy.scale=2",
            "--out",
            out,
            "-q",
        ],
    )
    .unwrap();
    assert_eq!(values(&tmp.path().join("t2")), vec![6.0]);
    // Its table is checked like every other: unknown keys and wrong types.
    std::fs::write(&cfg, "[toy]\nseedz = [3]\n").unwrap();
    let e = ltk(&reg, &["toy", "--config", cfg.to_str().unwrap(), "--out", out])
        .unwrap_err()
        .to_string();
    assert!(e.contains("seedz"), "{e}");
    let e = ltk(&reg, &["toy", "--out", out, "--scale", "big"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--scale") && e.contains("big"), "{e}");
    // Without the line in the registry, the table is unknown.
    let plain = lottery_tangent::experiments::registry();
    std::fs::write(&cfg, "[toy]\nseeds = [3]\n").unwrap();
    let e = ltk(&plain, &["imp", "--config", cfg.to_str().unwrap(), "--out", out])
        .unwrap_err()
        .to_string();
    assert!(e.contains("toy"), "{e}");

    // One dialect with ntk_compare: --steps is --iterations, --data takes a directory.
    ltk(
        &reg,
        &[
            "toy", "--out", out, "-q", "--name", "st", "--steps", "7", "--seeds", "1",
        ],
    )
    .unwrap();
    let cfg_text = std::fs::read_to_string(tmp.path().join("st/config.toml")).unwrap();
    assert!(cfg_text.contains("iterations = 7"), "{cfg_text}");
    let e = ltk(&reg, &["toy", "--out", out, "--data", "/no/such/dir"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("--data") && e.contains("/no/such/dir"), "{e}");

    // Shards and merge.
    for i in 0..2 {
        let shard = format!("{i}/2");
        ltk(
            &reg,
            &[
                "toy", "--out", out, "-q", "--name", "sh", "--seeds", "1,2,3", "--shard", &shard,
            ],
        )
        .unwrap();
    }
    let s0 = tmp.path().join("sh.shard-0-of-2");
    let s1 = tmp.path().join("sh.shard-1-of-2");
    ltk(&reg, &["merge", s0.to_str().unwrap(), s1.to_str().unwrap()]).unwrap();
    assert_eq!(values(&tmp.path().join("sh")), vec![1.0, 2.0, 3.0]);
}

/// Adding seeds to a finished run runs only the new units and gives what a
/// fresh run of the new config gives; any other change is still refused.
#[test]
fn runs_grow_by_their_unit_lists() {
    use std::sync::atomic::Ordering::SeqCst;
    let reg = registry();
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().to_str().unwrap();
    let args = |seeds: &str, scale: &str| {
        vec![
            "toy", "--out", out, "-q", "--name", "g", "--seeds", seeds, "--scale", scale,
        ]
        .into_iter()
        .map(str::to_string)
        .collect::<Vec<_>>()
    };
    let call = |a: Vec<String>| ltk(&reg, &a.iter().map(String::as_str).collect::<Vec<_>>());
    call(args("1,2", "3")).unwrap();
    let before = RUNS.load(SeqCst);
    call(args("1,2,7", "3")).unwrap();
    assert_eq!(RUNS.load(SeqCst) - before, 1, "only the new seed runs");
    assert_eq!(values(&tmp.path().join("g")), vec![3.0, 6.0, 21.0]);
    // The run directory now holds the grown config.
    let cfg = std::fs::read_to_string(tmp.path().join("g/config.toml")).unwrap();
    assert!(
        cfg.contains("seeds = [\n    1,\n    2,\n    7,\n]") || cfg.contains("seeds = [1, 2, 7]"),
        "{cfg}"
    );
    // Dropping a seed or changing anything else is refused.
    let e = call(args("1,7", "3")).unwrap_err().to_string();
    assert!(e.contains("toy.seeds"), "{e}");
    let e = call(args("1,2,7,8", "2")).unwrap_err().to_string();
    assert!(e.contains("toy.scale"), "{e}");
    // run.json records where the results came from.
    let rec: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(tmp.path().join("g/run.json")).unwrap()).unwrap();
    let p = &rec["provenance"];
    assert_eq!(p["version"].as_str(), Some(env!("CARGO_PKG_VERSION")));
    assert!(
        p["host"].is_string() && p["started_unix"].as_u64().unwrap() > 0 && p["command"].is_array(),
        "{rec}"
    );
}
