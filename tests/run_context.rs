//! The run policy: a locked run directory, the same config continues, a
//! changed config or another command is refused with the differing keys
//! named, `--force` starts over and lists what it removed.

use lottery_tangent::runner::context::{config_diff, RunContext, RunLock, Start};

#[test]
fn same_config_continues_and_a_changed_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let a = "name = \"x\"\n[imp]\nrounds = 3\n[imp.prune]\nrate = 0.3\n";
    let b = "name = \"x\"\n[imp]\nrounds = 3\n[imp.prune]\nrate = 0.6\n";
    {
        let ctx = RunContext::open(&root, "imp", a, false).unwrap();
        assert_eq!(ctx.start, Start::Fresh);
        std::fs::write(ctx.dir.file("round_01.json"), "{}").unwrap();
    }
    {
        let ctx = RunContext::open(&root, "imp", a, false).unwrap();
        assert_eq!(ctx.start, Start::Continued);
        assert!(ctx.dir.file("round_01.json").exists());
    }
    // a changed config: refused, naming the key, and config.toml untouched
    let e = RunContext::open(&root, "imp", b, false).unwrap_err().to_string();
    assert!(e.contains("imp.prune.rate: 0.3 -> 0.6") && e.contains("--force"), "{e}");
    assert_eq!(std::fs::read_to_string(root.join("config.toml")).unwrap(), a);
    // another command in the same directory
    let e = RunContext::open(&root, "lmc", a, false).unwrap_err().to_string();
    assert!(e.contains("`imp` run") && e.contains("`lmc`"), "{e}");
    // --force starts over and says what it removed
    let ctx = RunContext::open(&root, "imp", b, true).unwrap();
    match &ctx.start {
        Start::Restarted { removed } => {
            let names: Vec<String> = removed
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
                .collect();
            assert!(names.contains(&"round_01.json".to_string()), "{names:?}");
        }
        s => panic!("{s:?}"),
    }
    assert!(!ctx.dir.file("round_01.json").exists());
    assert_eq!(std::fs::read_to_string(root.join("config.toml")).unwrap(), b);
}

#[test]
fn a_second_process_is_locked_out_and_a_stale_lock_is_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // a lock held by a live process (pid 1 always exists)
    std::fs::write(root.join(".lock"), "1\n").unwrap();
    let e = RunLock::acquire(root).unwrap_err().to_string();
    assert!(e.contains("locked by running process 1"), "{e}");
    // a lock left by a dead process is taken over, and released on drop
    std::fs::write(root.join(".lock"), "4000000000\n").unwrap();
    {
        let _l = RunLock::acquire(root).unwrap();
        let held: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join(".lock")).unwrap()).unwrap();
        assert_eq!(held["pid"], std::process::id());
    }
    assert!(!root.join(".lock").exists());
}

#[test]
fn config_diffs_name_added_removed_and_changed_keys() {
    let d = config_diff("a = 1\n[t]\nb = 2\n", "a = 1\n[t]\nb = 3\nc = \"x\"\n");
    assert_eq!(d, vec!["t.b: 2 -> 3".to_string(), "t.c: (absent) -> \"x\"".to_string()]);
    assert!(config_diff("a = 1\n", "a = 1\n").is_empty());
}

/// The same config written differently (key order, spacing) is the same run.
#[test]
fn the_same_config_written_differently_continues() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    let a = "name = \"x\"\n[imp]\nrounds = 3\nseeds = [0, 1]\n";
    let b = "name = \"x\"\n\n[imp]\nseeds = [ 0, 1 ]\nrounds = 3\n";
    {
        let ctx = RunContext::open(&root, "imp", a, false).unwrap();
        std::fs::write(ctx.dir.file("round_01.json"), "{}").unwrap();
    }
    let ctx = RunContext::open(&root, "imp", b, false).unwrap();
    assert_eq!(ctx.start, Start::Continued);
}

/// A fresh run that fails before writing anything but its config leaves
/// nothing behind, so the corrected command starts afresh.
#[test]
fn a_fresh_run_that_wrote_nothing_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("r");
    drop(RunContext::open(&root, "imp", "name = \"x\"\n", false).unwrap());
    assert!(!root.exists());
    // An existing run is never cleaned, even when nothing was added.
    {
        let ctx = RunContext::open(&root, "imp", "name = \"x\"\n", false).unwrap();
        std::fs::write(ctx.dir.file("round_01.json"), "{}").unwrap();
    }
    drop(RunContext::open(&root, "imp", "name = \"x\"\n", false).unwrap());
    assert!(root.join("config.toml").exists() && root.join("round_01.json").exists());
}

/// The registry of experiment tables: a table no experiment owns, or an
/// unknown key inside an experiment's table, is an error when the file is
/// read (whatever the command), naming the table or key.
#[test]
fn unknown_tables_and_keys_are_errors_when_the_config_is_read() {
    use lottery_tangent::config::ExperimentConfig;
    let reg = lottery_tangent::experiments::registry();
    let check = |text: &str| ExperimentConfig::from_toml(text, "t.toml").and_then(|c| reg.check_tables(&c.tables));
    let e = check("[prune]\nrate = 0.2\n").unwrap_err().to_string();
    assert!(e.contains("prune") && e.contains("imp"), "{e}");
    let e = check("[imp]\nroundz = 3\n").unwrap_err().to_string();
    assert!(e.contains("[imp]") && e.contains("roundz"), "{e}");
    let e = ExperimentConfig::from_toml("nmae = \"x\"\n", "t.toml")
        .unwrap_err()
        .to_string();
    assert!(e.contains("nmae"), "{e}");
    // a known table is read by its experiment, with its defaults
    let c = ExperimentConfig::from_toml("[imp]\nrounds = 3\n", "t.toml").unwrap();
    let imp: lottery_tangent::experiments::imp::ImpConfig = c.table("imp").unwrap().unwrap();
    assert_eq!(imp.rounds, 3);
    assert_eq!(imp.seeds, vec![0]);
}
