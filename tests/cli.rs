//! The `ltk` binary: the resolved config shows the pruning rates used, and
//! bad input fails with a clear message before any training.

use std::process::Command;

fn ltk() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ltk"))
}

#[test]
fn show_config_shows_the_output_layers_half_rate() {
    let out = ltk()
        .args(["show-config", "--config", "experiments/imp_digits.toml"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    // imp_digits.toml sets rate = 0.3 and no output rate: fc3 gets 0.15
    assert!(text.contains("\"fc3.weight\" = 0.15"), "{text}");
    let out = ltk()
        .args(["show-config", "--config", "experiments/lmc_imp_fashion.toml"])
        .output()
        .unwrap();
    if out.status.success() {
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("\"fc3.weight\" = 0.1"), "{text}");
    }
}

#[test]
fn a_rewind_step_past_the_run_fails_before_training() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltk()
        .args([
            "imp",
            "--config",
            "experiments/imp_digits.toml",
            "--rewind-step",
            "100000",
            "--quiet",
            "--out",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("imp.rewind_step") && err.contains("100000"), "{err}");
    assert!(
        !dir.path().join("imp_digits").exists(),
        "no run directory for a refused config"
    );
}

/// The run policy from the command line: re-running continues, a changed
/// config is refused naming the key (config.toml untouched), --force restarts.
#[test]
fn rerunning_continues_and_a_changed_config_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut c = ltk();
        c.args(["train", "--iterations", "30", "--quiet", "--name", "t", "--out"])
            .arg(dir.path());
        c.args(extra);
        c.output().unwrap()
    };
    let first = run(&[]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let summary = || std::fs::read_to_string(dir.path().join("t/summary.json")).unwrap();
    let before = summary();
    let again = run(&[]);
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    assert!(String::from_utf8_lossy(&again.stderr).contains("continuing the run"));
    // re-opening a finished run keeps its measured throughput
    assert_eq!(summary(), before);
    assert!(!before.contains("\"samples_per_second\": 0.0"), "{before}");
    let cfg = std::fs::read_to_string(dir.path().join("t/config.toml")).unwrap();
    let changed = run(&["--lr", "0.2"]);
    assert!(!changed.status.success());
    let err = String::from_utf8_lossy(&changed.stderr);
    assert!(err.contains("train.optimizer.lr") && err.contains("--force"), "{err}");
    assert_eq!(std::fs::read_to_string(dir.path().join("t/config.toml")).unwrap(), cfg);
    let forced = run(&["--lr", "0.2", "--force"]);
    assert!(forced.status.success(), "{}", String::from_utf8_lossy(&forced.stderr));
    assert!(String::from_utf8_lossy(&forced.stderr).contains("--force: removing"));
}

#[test]
fn hidden_widths_with_a_fixed_model_are_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = ltk()
        .args(["train", "--model", "lenet300_100", "--hidden", "64", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--hidden") && err.contains("lenet300_100"), "{err}");
}

/// `ntk_compare --name X` and `ltk subset-sum --name X` never overwrite a run
/// of another command.
#[test]
fn runs_of_another_command_are_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let train = ltk()
        .args(["train", "--iterations", "5", "--quiet", "--name", "x", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(train.status.success(), "{}", String::from_utf8_lossy(&train.stderr));
    let ntk = Command::new(env!("CARGO_BIN_EXE_ntk_compare"))
        .args(["--name", "x", "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!ntk.status.success());
    let err = String::from_utf8_lossy(&ntk.stderr);
    assert!(err.contains("`train` run") && err.contains("--force"), "{err}");
    let ss = ltk()
        .args(["subset-sum", "--ns", "4,6", "--trials", "2", "--name", "x", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!ss.status.success());
    assert!(String::from_utf8_lossy(&ss.stderr).contains("`train` run"));
    assert!(dir.path().join("x/metrics.json").exists(), "the train run is intact");
}

/// A write that fails names the file and exits non-zero without a panic:
/// the run is limited to 4 KiB files (`ulimit -f`, with SIGXFSZ ignored so
/// the write fails with EFBIG as on a full disk), so saving the weights fails.
#[test]
fn a_failed_write_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("w.toml");
    std::fs::write(&cfg, TINY).unwrap();
    let o = Command::new("bash")
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 4; exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_ltk"))
        .args(["train", "--quiet", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "the run succeeded: {err}");
    assert!(err.contains(".safetensors") && err.contains("File too large"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    // no temporary file is left behind
    let leftovers: Vec<_> = walk(dir.path())
        .into_iter()
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.contains(".tmp") || n.contains(".partial")
        })
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![];
    for e in std::fs::read_dir(p).unwrap().flatten() {
        let q = e.path();
        if q.is_dir() {
            out.extend(walk(&q));
        }
        out.push(q);
    }
    out
}

/// kill -9 at random moments of a run that saves its state every step, then
/// re-running the same command: the final weights equal an uninterrupted
/// run's, bit for bit (the state is saved atomically; the stale lock of the
/// killed process is taken over).
#[test]
fn kill_9_then_rerun_equals_an_uninterrupted_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("k.toml");
    std::fs::write(
        &cfg,
        "name = \"k\"\n[data]\nsource = \"digits\"\n[model]\nkind = \"mlp\"\nhidden = [64]\n[train]\niterations = 1500\nbatch_size = 32\neval_every = 50\nsave_every = 1\n",
    )
    .unwrap();
    let cmd = |out: &std::path::Path| {
        let mut c = ltk();
        c.args(["train", "--quiet", "--config"]).arg(&cfg).arg("--out").arg(out);
        c.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        c
    };
    let clean = dir.path().join("clean");
    assert!(cmd(&clean).status().unwrap().success());
    let want = std::fs::read(clean.join("k/final.safetensors")).unwrap();
    let killed = dir.path().join("killed");
    let mut kills = 0;
    for delay_ms in [150u64, 320, 90, 470, 230] {
        let mut child = cmd(&killed).spawn().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
    }
    assert!(kills >= 1, "no run was interrupted: lengthen the run");
    let out = cmd(&killed).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let got = std::fs::read(killed.join("k/final.safetensors")).unwrap();
    assert!(got == want, "resumed after {kills} kills: final weights differ");
}

/// Shards for job arrays: two shards plus `ltk merge` give the same summary
/// as one unsharded run, bit for bit.
#[test]
fn two_shards_and_a_merge_equal_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("s.toml");
    std::fs::write(
        &cfg,
        "name = \"s\"\n[data]\nsource = \"digits\"\n[model]\nkind = \"mlp\"\nhidden = [32]\n[train]\niterations = 60\nbatch_size = 32\n[supermask]\ncriteria = [\"large_final_same_sign\", \"random\"]\ndensities = [0.5, 0.2]\nseeds = [0, 1, 2]\n",
    )
    .unwrap();
    let run = |out: &std::path::Path, extra: &[&str]| {
        let o = ltk()
            .args(["supermask", "--quiet", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(out)
            .args(extra)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    let whole = dir.path().join("whole");
    run(&whole, &[]);
    let sharded = dir.path().join("sharded");
    let s0 = run(&sharded, &["--shard", "0/2"]);
    assert!(s0.contains("2 of 3 units"), "{s0}");
    // merging before every shard is done is a clear error
    let early = ltk().arg("merge").arg(sharded.join("s.shard-0-of-2")).output().unwrap();
    assert!(!early.status.success());
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("missing: s.shard-1-of-2"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    run(&sharded, &["--shard", "1/2"]);
    let m = ltk()
        .arg("merge")
        .arg(sharded.join("s.shard-0-of-2"))
        .arg(sharded.join("s.shard-1-of-2"))
        .output()
        .unwrap();
    assert!(m.status.success(), "{}", String::from_utf8_lossy(&m.stderr));
    let a = std::fs::read(whole.join("s/summary.json")).unwrap();
    let b = std::fs::read(sharded.join("s/summary.json")).unwrap();
    assert!(a == b, "merged summary differs from the unsharded one");
    // a bad shard spec
    let bad = ltk()
        .args(["supermask", "--quiet", "--shard", "2/2", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--shard"));
}

/// Runs `ltk CMD` on `config` unsharded and as `n` shards plus `ltk merge`;
/// returns both summaries (as JSON text).
fn sharded_and_whole(cmd: &str, config: &str, n: usize) -> (String, String) {
    sharded_and_whole_with(cmd, Some(config), &[], n)
}

/// [`sharded_and_whole`] with a config file (run name `x`) or flags `args`.
fn sharded_and_whole_with(cmd: &str, config: Option<&str>, args: &[&str], n: usize) -> (String, String) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    let mut base: Vec<std::ffi::OsString> = vec![cmd.into(), "--quiet".into()];
    if let Some(c) = config {
        std::fs::write(&cfg, c).unwrap();
        base.extend(["--config".into(), cfg.clone().into()]);
    }
    base.extend(args.iter().map(|a| a.into()));
    let run = |out: &std::path::Path, extra: &[String]| {
        let o = ltk().args(&base).arg("--out").arg(out).args(extra).output().unwrap();
        assert!(o.status.success(), "{cmd}: {}", String::from_utf8_lossy(&o.stderr));
    };
    run(&dir.path().join("whole"), &[]);
    let sh = dir.path().join("sharded");
    for i in 0..n {
        run(&sh, &["--shard".into(), format!("{i}/{n}")]);
    }
    let m = ltk()
        .arg("merge")
        .args((0..n).map(|i| sh.join(format!("x.shard-{i}-of-{n}"))))
        .output()
        .unwrap();
    assert!(m.status.success(), "{cmd}: {}", String::from_utf8_lossy(&m.stderr));
    let read = |p: std::path::PathBuf| std::fs::read_to_string(p).unwrap();
    (
        read(dir.path().join("whole/x/summary.json")),
        read(sh.join("x/summary.json")),
    )
}

const TINY: &str = "name = \"x\"\n[data]\nsource = \"digits\"\n[model]\nkind = \"mlp\"\nhidden = [32]\n[train]\niterations = 40\nbatch_size = 32\n";

/// IMP seeds are units too: two shards plus a merge equal one run, bit for bit.
#[test]
fn imp_shards_merge_to_the_unsharded_summary() {
    let (a, b) = sharded_and_whole(
        "imp",
        &format!("{TINY}[imp]\nrounds = 2\nseeds = [3, 4]\ncontrols = [\"random_reinit\"]\n[imp.prune]\nrate = 0.5\n"),
        2,
    );
    assert!(a == b, "merged IMP summary differs from the unsharded one");
}

/// LMC units (the parent, each dense pair, each per-k IMP chain) sharded
/// three ways merge to the unsharded summary; only wall times differ.
#[test]
fn lmc_shards_merge_to_the_unsharded_summary() {
    let (a, b) = sharded_and_whole(
        "lmc",
        &format!("{TINY}[lmc]\nks = [0, 10]\npairs = 2\npoints = 3\ntrain_eval_size = 0\n[lmc.imp]\ndensities = [0.5]\n[lmc.imp.prune]\nrate = 0.5\n"),
        3,
    );
    assert_eq!(stripped(&a), stripped(&b));
}

/// A ResNet with BatchNorm goes through LMC (statistics recomputed at each
/// interpolated point) and IMP per k, sharded, equal to the unsharded run;
/// a mask file on a BatchNorm parameter is refused before training.
#[test]
fn resnet_lmc_runs_sharded_and_a_batch_norm_mask_is_refused() {
    let net = "name = \"x\"\n[data]\nsource = \"digits\"\n[model]\nkind = \"resnet\"\ndepth = 8\nwidth = 4\n[train]\niterations = 20\nbatch_size = 32\n[train.optimizer]\nkind = \"sgd\"\nlr = 0.05\nmomentum = 0.9\n";
    let (a, b) = sharded_and_whole(
        "lmc",
        &format!("{net}[lmc]\nks = [0, 5]\npairs = 1\npoints = 3\ntrain_eval_size = 0\n[lmc.imp]\ndensities = [0.5]\n[lmc.imp.prune]\nrate = 0.5\nscope = \"global\"\n"),
        2,
    );
    assert_eq!(stripped(&a), stripped(&b));
    assert!(!a.contains("NaN") && a.contains("\"instability\""), "{a}");

    let dir = tempfile::tempdir().unwrap();
    let built = lottery_tangent::models::ModelConfig::Resnet { depth: 8, width: 4 }
        .build([1, 8, 8], 10)
        .unwrap();
    let p = built.init(0);
    let names = vec!["conv.weight".to_string(), "bn.weight".to_string()];
    let mask_path = dir.path().join("bn_mask.safetensors");
    lottery_tangent::params::Mask::ones(&p, &names)
        .unwrap()
        .save(&mask_path)
        .unwrap();
    let cfg = dir.path().join("bad_mask.toml");
    std::fs::write(
        &cfg,
        format!(
            "{net}[lmc]\nks = [0]\npairs = 1\npoints = 3\nmask = \"{}\"\n",
            mask_path.display()
        ),
    )
    .unwrap();
    fails_with(
        &["lmc", "--config", &cfg.display().to_string()],
        dir.path(),
        &["bn.weight", "BatchNorm", "lmc.mask"],
    );
}

/// ntk-compare's (width, seed) units sharded merge to the unsharded summary
/// (the learning rate comes from the shards' lr.json); only wall times differ.
#[test]
fn ntk_compare_shards_merge_to_the_unsharded_summary() {
    let (a, b) = sharded_and_whole_with(
        "ntk-compare",
        None,
        &[
            "--name",
            "x",
            "--widths",
            "16,32",
            "--seeds",
            "0,1",
            "--steps",
            "10",
            "--train-size",
            "32",
            "--test-size",
            "32",
        ],
        3,
    );
    assert_eq!(stripped(&a), stripped(&b));
}

/// lr-rewind (every setting's LMC units) sharded merges to the unsharded
/// summary; only wall times differ. A tiny conv net, so the conv path runs too.
#[test]
fn lr_rewind_shards_merge_to_the_unsharded_summary() {
    let cfg = "name = \"x\"\n[data]\nsource = \"digits\"\n[model]\nkind = \"conv\"\nchannels = [4]\nhidden = [16]\n[train]\niterations = 30\nbatch_size = 32\n[train.optimizer]\nkind = \"sgd\"\nlr = 0.05\nmomentum = 0.9\n[lr_rewind]\nks = [0, 5]\ndensities = [0.6]\npairs = 1\npoints = 3\nsettings = [{ name = \"low\", lr = 0.01 }, { name = \"warm\", lr = 0.05, warmup_steps = 10 }]\n[lr_rewind.prune]\nrate = 0.5\n";
    let (a, b) = sharded_and_whole("lr-rewind", cfg, 3);
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["cells"].as_array().unwrap().len(), 4, "{a}");
}

/// Strong-ticket units (the target, each n, each edge-popup run) sharded
/// merge to the unsharded summary; only wall times differ.
#[test]
fn strong_shards_merge_to_the_unsharded_summary() {
    let (a, b) = sharded_and_whole(
        "strong",
        &format!(
            "{TINY}[strong]\npaths = [2, 3]\nedge_popup_keep = [0.5]\nedge_popup_weights = [\"signed_constant\"]\n"
        ),
        2,
    );
    assert_eq!(stripped(&a), stripped(&b));
}

/// Pruning-at-init units (each seed's IMP chain, each (seed, method)) sharded
/// three ways merge to the unsharded summary; bad [pai] tables are refused
/// before any training.
#[test]
fn pai_shards_merge_and_bad_tables_are_refused() {
    let (a, b) = sharded_and_whole(
        "pai",
        &format!("{TINY}[pai]\ndensities = [0.3]\nseeds = [0, 1]\nmethods = [\"snip\", \"synflow\", \"phew\"]\nsynflow_iterations = 5\n[pai.prune]\nrate = 0.5\n"),
        3,
    );
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["records"].as_array().unwrap().len(), 2 * 4, "{a}");

    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, format!("{TINY}{text}")).unwrap();
        p.display().to_string()
    };
    let zero = write("zero.toml", "[pai]\ndensities = [0.0]\n");
    fails_with(&["pai", "--config", &zero], dir.path(), &["pai.densities"]);
    let unknown = write("unknown.toml", "[pai]\nmethods = [\"optimal_brain_damage\"]\n");
    fails_with(
        &["pai", "--config", &unknown],
        dir.path(),
        &["[pai]", "optimal_brain_damage"],
    );
    let conv = dir.path().join("conv.toml");
    std::fs::write(
        &conv,
        "name = \"x\"\n[data]\nsource = \"digits\"\n[model]\nkind = \"conv\"\nchannels = [4]\nhidden = [16]\n[pai]\nmethods = [\"phew\"]\n",
    )
    .unwrap();
    fails_with(
        &["pai", "--config", &conv.display().to_string()],
        dir.path(),
        &["phew", "fully connected"],
    );
}

/// Weight-agnostic units (seeds) sharded merge to the unsharded summary; a
/// zero shared weight and a conv model are refused before training.
#[test]
fn weight_agnostic_shards_merge_and_bad_tables_are_refused() {
    let (a, b) = sharded_and_whole(
        "weight-agnostic",
        &format!("{TINY}[weight_agnostic]\ndensities = [0.3]\nseeds = [0, 1]\nweights = [-1.0, 0.5, 1.0]\n[weight_agnostic.prune]\nrate = 0.5\n"),
        2,
    );
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["records"].as_array().unwrap().len(), 2 * 6 * 2 * 3, "{a}");
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.toml");
    std::fs::write(&zero, format!("{TINY}[weight_agnostic]\nweights = [0.0, 1.0]\n")).unwrap();
    fails_with(
        &["weight-agnostic", "--config", &zero.display().to_string()],
        dir.path(),
        &["weight_agnostic.weights"],
    );
}

fn fails_with(args: &[&str], out: &std::path::Path, needles: &[&str]) {
    let o = ltk().args(args).arg("--out").arg(out).output().unwrap();
    assert!(!o.status.success(), "{args:?} succeeded");
    let err = String::from_utf8_lossy(&o.stderr);
    for n in needles {
        assert!(err.contains(n), "{args:?}: `{n}` not in: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

/// Bad configs get a clear error naming the file or field, and exit non-zero.
#[test]
fn bad_configs_name_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let unknown = write("unknown.toml", "[train]\nbatchsize = 32\n");
    fails_with(
        &["train", "--config", &unknown],
        dir.path(),
        &["unknown.toml", "batchsize"],
    );
    let wrong_type = write("type.toml", "[train]\nbatch_size = \"many\"\n");
    fails_with(
        &["train", "--config", &wrong_type],
        dir.path(),
        &["type.toml", "batch_size"],
    );
    let zero_batch = write("zero.toml", "[train]\nbatch_size = 0\n");
    fails_with(&["train", "--config", &zero_batch], dir.path(), &["train.batch_size"]);
    let zero_iters = write("iters.toml", "[train]\niterations = 0\n");
    fails_with(&["train", "--config", &zero_iters], dir.path(), &["train.iterations"]);
    fails_with(&["train", "--lr", "-0.1"], dir.path(), &["lr"]);
    fails_with(
        &["train", "--config", "/nonexistent/x.toml"],
        dir.path(),
        &["/nonexistent/x.toml"],
    );
    // experiment tables: unknown key, wrong type, zero and negative values
    let lmc_key = write("lk.toml", "[lmc]\nkss = [0]\n");
    fails_with(&["lmc", "--config", &lmc_key], dir.path(), &["[lmc]", "kss"]);
    let strong_type = write("st.toml", "[strong]\npaths = \"8\"\n");
    fails_with(
        &["strong", "--config", &strong_type],
        dir.path(),
        &["[strong]", "paths"],
    );
    let zero_pairs = write("zp.toml", "[lmc]\nks = [0]\npairs = 0\n");
    fails_with(&["lmc", "--config", &zero_pairs], dir.path(), &["lmc.pairs"]);
    let neg_rate = write("nr.toml", "[imp.prune]\nrate = -0.2\n");
    fails_with(&["imp", "--config", &neg_rate], dir.path(), &["rate"]);
    let warm = write(
        "wu.toml",
        "[train]\niterations = 50\n[lr_rewind]\nks = [0]\ndensities = [0.5]\nsettings = [{ name = \"a\", lr = 0.1, warmup_steps = 80 }]\n",
    );
    fails_with(&["lr-rewind", "--config", &warm], dir.path(), &["warmup_steps"]);
    let crop = write(
        "cp.toml",
        "[model]\nkind = \"conv\"\n[train.augment]\ncrop_padding = 9\n",
    );
    fails_with(&["train", "--config", &crop], dir.path(), &["crop_padding"]);
    let bad_density = write("bd.toml", "[supermask]\ndensities = [1.5]\n");
    fails_with(&["supermask", "--config", &bad_density], dir.path(), &["densities"]);
    let table = write("tb.toml", "[lottery]\nx = 1\n");
    fails_with(&["imp", "--config", &table], dir.path(), &["lottery"]);
    fails_with(&["ntk-compare", "--widths", "0,64", "--quiet"], dir.path(), &["widths"]);
    fails_with(&["subset-sum", "--ns", "0"], dir.path(), &["n"]);
}

/// The happy paths not covered elsewhere: train then re-plot its figures,
/// subset-sum; every finished run has its summary, report and figures.
#[test]
fn train_plot_and_subset_sum_write_their_reports() {
    let dir = tempfile::tempdir().unwrap();
    let ok = |args: &[&str]| {
        let o = ltk().args(args).arg("--out").arg(dir.path()).output().unwrap();
        assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    ok(&["train", "--iterations", "20", "--quiet", "--name", "t"]);
    let t = dir.path().join("t");
    std::fs::remove_dir_all(t.join("figures")).unwrap();
    let o = ltk().arg("plot").arg(&t).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(t.join("figures/accuracy.png").exists() && t.join("figures/loss.png").exists());
    let out = ok(&["subset-sum", "--ns", "4,6,8", "--trials", "2", "--name", "ss"]);
    assert!(out.contains("fitted ln(max error)"), "{out}");
    for f in ["summary.json", "report.md", "figures/lueker.png"] {
        assert!(dir.path().join("ss").join(f).exists(), "{f}");
    }
    assert!(t.join("summary.json").exists());
}

fn idx_images(n: u32, rows: u32, cols: u32, pixels: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 3];
    for d in [n, rows, cols] {
        v.extend(d.to_be_bytes());
    }
    v.extend(std::iter::repeat_n(7u8, pixels));
    v
}

fn idx_labels(n: u32, labels: usize) -> Vec<u8> {
    let mut v = vec![0, 0, 8, 1];
    v.extend(n.to_be_bytes());
    v.extend((0..labels).map(|i| (i % 10) as u8));
    v
}

/// Bad IDX data (corrupt, truncated, mismatched counts) is a clear error
/// naming the file, never a panic.
#[test]
fn bad_idx_data_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let make = |name: &str, train_images: Vec<u8>, train_labels: Vec<u8>| {
        let d = dir.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("train-images-idx3-ubyte"), train_images).unwrap();
        std::fs::write(d.join("train-labels-idx1-ubyte"), train_labels).unwrap();
        std::fs::write(d.join("t10k-images-idx3-ubyte"), idx_images(20, 4, 4, 20 * 16)).unwrap();
        std::fs::write(d.join("t10k-labels-idx1-ubyte"), idx_labels(20, 20)).unwrap();
        d.display().to_string()
    };
    let out = dir.path().join("runs");
    let corrupt = make("corrupt", b"this is not an IDX file".to_vec(), idx_labels(50, 50));
    fails_with(
        &["train", "--idx-dir", &corrupt, "--quiet"],
        &out,
        &["train-images-idx3-ubyte"],
    );
    let truncated = make("truncated", idx_images(50, 4, 4, 30 * 16), idx_labels(50, 50));
    fails_with(
        &["train", "--idx-dir", &truncated, "--quiet"],
        &out,
        &["train-images-idx3-ubyte"],
    );
    let mismatched = make("mismatched", idx_images(50, 4, 4, 50 * 16), idx_labels(40, 40));
    fails_with(
        &["train", "--idx-dir", &mismatched, "--quiet"],
        &out,
        &["train-labels-idx1-ubyte"],
    );
    let missing = dir.path().join("empty");
    std::fs::create_dir_all(&missing).unwrap();
    fails_with(
        &["train", "--idx-dir", &missing.display().to_string(), "--quiet"],
        &out,
        &["train-images-idx3-ubyte"],
    );
}

/// Removes timing fields (wall times differ between runs) from a JSON value.
fn strip_timings(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| {
                !["seconds", "per_second", "timing", "throughput", "wall"]
                    .iter()
                    .any(|t| k.contains(t))
            });
            m.values_mut().for_each(strip_timings);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_timings),
        _ => {}
    }
}

/// A summary's JSON without its wall times.
fn stripped(text: &str) -> serde_json::Value {
    let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
    strip_timings(&mut v);
    v
}

/// `ltk ntk-compare` and the `ntk_compare` alias run the same code.
#[test]
fn ntk_compare_is_an_ltk_subcommand_with_an_alias() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "--widths",
        "32,64",
        "--steps",
        "20",
        "--train-size",
        "64",
        "--test-size",
        "64",
        "--seeds",
        "0,1",
        "--quiet",
    ];
    let a = ltk()
        .arg("ntk-compare")
        .args(args)
        .args(["--name", "a", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let b = Command::new(env!("CARGO_BIN_EXE_ntk_compare"))
        .args(args)
        .args(["--name", "a", "--out"])
        .arg(dir.path().join("alias"))
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", String::from_utf8_lossy(&b.stderr));
    let read = |p: std::path::PathBuf| {
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
        strip_timings(&mut v);
        v
    };
    assert_eq!(
        read(dir.path().join("a/summary.json")),
        read(dir.path().join("alias/a/summary.json"))
    );
}

/// Two processes never write one run directory: while a run holds the lock,
/// a second command into the same directory fails naming the holder's pid,
/// and `--force` does not take the directory from it either.
#[test]
fn a_running_process_holds_its_run_directory() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("l.toml");
    std::fs::write(
        &cfg,
        "name = \"l\"\n[data]\nsource = \"digits\"\n[model]\nkind = \"mlp\"\nhidden = [256, 256]\n[train]\niterations = 100000\nbatch_size = 32\n",
    )
    .unwrap();
    let cmd = || {
        let mut c = ltk();
        c.args(["train", "--quiet", "--config"])
            .arg(&cfg)
            .arg("--out")
            .arg(dir.path());
        c
    };
    let mut first = cmd()
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let lock = dir.path().join("l/.lock");
    let t0 = std::time::Instant::now();
    while !lock.exists() && t0.elapsed().as_secs() < 30 {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(lock.exists(), "the first run never took its lock");
    let pid = first.id().to_string();
    for extra in [&[][..], &["--force"][..]] {
        let second = cmd().args(extra).output().unwrap();
        assert!(!second.status.success());
        let err = String::from_utf8_lossy(&second.stderr);
        assert!(err.contains("locked by running process") && err.contains(&pid), "{err}");
    }
    first.kill().unwrap();
    first.wait().unwrap();
}

/// Multi-prize units (seed, width) sharded two ways merge to the unsharded
/// summary; bad tables and a sign-activation model are refused by field.
#[test]
fn multi_prize_shards_merge_and_bad_input_is_refused() {
    let (a, b) = sharded_and_whole(
        "multi-prize",
        &format!("{TINY}[multi_prize]\nwidth_factors = [0.5, 1.0]\nseeds = [0, 1]\n"),
        2,
    );
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    // 2 seeds x 2 widths x (dense + 3 arms)
    assert_eq!(v["records"].as_array().unwrap().len(), 16, "{a}");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let keep = write("keep.toml", &format!("{TINY}[multi_prize]\nkeep = 1.0\n"));
    fails_with(&["multi-prize", "--config", &keep], dir.path(), &["multi_prize.keep"]);
    let width = write("w.toml", &format!("{TINY}[multi_prize]\nwidth_factors = [0.0]\n"));
    fails_with(
        &["multi-prize", "--config", &width],
        dir.path(),
        &["multi_prize.width_factors"],
    );
    let sign = write(
        "sign.toml",
        "[data]\nsource = \"digits\"\n[model]\nkind = \"mlp\"\nhidden = [8]\nactivation = \"sign\"\n",
    );
    fails_with(&["train", "--config", &sign], dir.path(), &["model.activation", "sign"]);
}

/// Elastic units (seeds) sharded two ways merge to the unsharded summary;
/// a conv model and zero blocks are refused.
#[test]
fn elastic_shards_merge_and_bad_input_is_refused() {
    let (a, b) = sharded_and_whole(
        "elastic",
        &format!("{TINY}[elastic]\nblocks = 1\ndensities = [0.3]\nseeds = [0, 1]\n[elastic.prune]\nrate = 0.5\n"),
        2,
    );
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    // 2 seeds x 2 directions x (imp, transformed, random)
    assert_eq!(v["records"].as_array().unwrap().len(), 12, "{a}");
    let dir = tempfile::tempdir().unwrap();
    let zero = dir.path().join("zero.toml");
    std::fs::write(&zero, format!("{TINY}[elastic]\nblocks = 0\n")).unwrap();
    fails_with(
        &["elastic", "--config", &zero.display().to_string()],
        dir.path(),
        &["elastic.blocks"],
    );
    fails_with(
        &["elastic", "--model", "conv", "--quiet"],
        dir.path(),
        &["model", "fully connected network or a ResNet"],
    );
    // A ResNet family: ResNet-14 (2 blocks per stage) and ResNet-20 (3).
    let resnet = dir.path().join("resnet.toml");
    std::fs::write(
        &resnet,
        "name = \"r\"\n[data]\nsource = \"digits\"\n[model]\nkind = \"resnet\"\ndepth = 14\nwidth = 2\n\
         [train]\niterations = 4\nbatch_size = 32\n[elastic]\nblocks = 2\ndensities = [0.8]\nseeds = [0]\n",
    )
    .unwrap();
    let out = ltk()
        .args(["elastic", "--config", &resnet.display().to_string(), "--quiet", "--out"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("ResNet-14") && text.contains("ResNet-20"), "{text}");
}

/// Ticket-scale units (seed, width) sharded two ways merge to the unsharded
/// summary; a run without evaluations (no early-stopping step) is refused.
#[test]
fn ticket_scale_shards_merge_and_bad_input_is_refused() {
    let tiny = TINY.replace("batch_size = 32\n", "batch_size = 32\neval_every = 20\n");
    let (a, b) = sharded_and_whole(
        "ticket-scale",
        &format!("{tiny}[ticket_scale]\nwidth_factors = [0.5, 1.0]\ndensities = [0.3]\nseeds = [0, 1]\n[ticket_scale.prune]\nrate = 0.5\n"),
        2,
    );
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    // 2 seeds x 2 widths x (dense + 1 target)
    assert_eq!(v["records"].as_array().unwrap().len(), 8, "{a}");
    let dir = tempfile::tempdir().unwrap();
    let no_eval = dir.path().join("no_eval.toml");
    let no_eval_cfg = TINY.replace("batch_size = 32\n", "batch_size = 32\neval_every = 0\n");
    std::fs::write(&no_eval, format!("{no_eval_cfg}[ticket_scale]\n")).unwrap();
    fails_with(
        &["ticket-scale", "--config", &no_eval.display().to_string()],
        dir.path(),
        &["train.eval_every"],
    );
    let big = dir.path().join("big.toml");
    std::fs::write(
        &big,
        format!("{tiny}[ticket_scale]\nwidth_factors = [0.01, 1.0]\ndensities = [0.9]\n"),
    )
    .unwrap();
    fails_with(
        &["ticket-scale", "--config", &big.display().to_string()],
        dir.path(),
        &["ticket_scale.densities"],
    );
}

/// Grokking units (seed, model) sharded two ways merge to the unsharded
/// summary; a modulus that is not prime, a training fraction outside (0, 1)
/// and a non-modular data set are refused by field.
#[test]
fn grokking_shards_merge_and_bad_input_is_refused() {
    let (a, b) = sharded_and_whole_with(
        "grokking",
        None,
        &["--config", "experiments/grokking_tiny.toml", "--name", "x"],
        2,
    );
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    assert_eq!(v["curves"].as_array().unwrap().len(), 4, "{a}");
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string("experiments/grokking_tiny.toml").unwrap();
    let write = |name: &str, text: String| {
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    let nine = write("nine.toml", tiny.replace("modulus = 11", "modulus = 9"));
    fails_with(&["grokking", "--config", &nine], dir.path(), &["data.modulus", "prime"]);
    let two = write("two.toml", tiny.replace("modulus = 11", "modulus = 2"));
    fails_with(&["grokking", "--config", &two], dir.path(), &["data.modulus"]);
    let frac = write(
        "frac.toml",
        tiny.replace("train_fraction = 0.5", "train_fraction = 1.0"),
    );
    fails_with(&["grokking", "--config", &frac], dir.path(), &["data.train_fraction"]);
    fails_with(&["grokking", "--quiet"], dir.path(), &["data.source", "modular"]);
    let digits_frac = write(
        "df.toml",
        "[data]\nsource = \"digits\"\ntrain_fraction = 0.5\n".to_string(),
    );
    fails_with(
        &["train", "--config", &digits_frac],
        dir.path(),
        &["data.train_fraction"],
    );
}

/// Kernel-velocity units (per seed: the kernel trace and every LMC unit)
/// sharded two ways merge to the unsharded summary; Δ beyond the run, a
/// spawn step without room for Δ and repeated seeds are refused by field.
#[test]
fn kernel_velocity_shards_merge_and_bad_input_is_refused() {
    let (a, b) = sharded_and_whole_with(
        "kernel-velocity",
        None,
        &["--config", "experiments/kernel_velocity_digits.toml", "--name", "x"],
        2,
    );
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    let seeds = v["seeds"].as_array().unwrap();
    assert_eq!(seeds.len(), 2, "{a}");
    for s in seeds {
        // 3 spawn steps; kernels at 0, every k and the log grid, each with t + Δ ≤ T.
        assert_eq!(s["per_k"].as_array().unwrap().len(), 3, "{a}");
        let pts = s["trace"]["points"].as_array().unwrap();
        assert!(pts.len() >= 5, "{a}");
        assert!(pts.iter().all(|p| p["step"].as_u64().unwrap() + 10 <= 200), "{a}");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = "experiments/kernel_velocity_digits.toml";
    fails_with(
        &["kernel-velocity", "--config", cfg, "--delta", "200"],
        dir.path(),
        &["kernel_velocity.delta"],
    );
    fails_with(
        &["kernel-velocity", "--config", cfg, "--ks", "0,195"],
        dir.path(),
        &["kernel_velocity.ks"],
    );
    fails_with(
        &["kernel-velocity", "--config", cfg, "--seeds", "1,1"],
        dir.path(),
        &["kernel_velocity.seeds"],
    );
}

/// Ticket-NTK units ((seed, k) IMP chains with their subnetworks, (seed,
/// method) masks) sharded two ways merge to the unsharded summary; a rewind
/// step past the run, an empty density list and a conv model are refused.
#[test]
fn ticket_ntk_shards_merge_and_bad_input_is_refused() {
    let (a, b) = sharded_and_whole_with(
        "ticket-ntk",
        None,
        &["--config", "experiments/ticket_ntk_digits.toml", "--name", "x"],
        3,
    );
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    let recs = v["records"].as_array().unwrap();
    // per seed: 2 k x (dense + imp, random_reinit, random_prune) + snip = 9
    assert_eq!(recs.len(), 18, "{a}");
    for r in recs.iter().filter(|r| r["collapsed"].is_null()) {
        let al = r["start"]["alignment"].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&al), "{r}");
        assert!(r["linearized_accuracy"].as_f64().is_some(), "{r}");
        assert!(r["kernel_accuracy"].as_f64().is_some(), "{r}");
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = "experiments/ticket_ntk_digits.toml";
    fails_with(
        &["ticket-ntk", "--config", cfg, "--rewind-steps", "0,150"],
        dir.path(),
        &["ticket_ntk.rewind_steps"],
    );
    fails_with(
        &["ticket-ntk", "--config", cfg, "--densities", "1.5"],
        dir.path(),
        &["ticket_ntk.densities"],
    );
    fails_with(
        &["ticket-ntk", "--config", cfg, "--model", "conv"],
        dir.path(),
        &["model", "fully connected"],
    );
}

/// Double-descent units (seed, width) sharded two ways merge to the
/// unsharded summary; an empty widths list, a zero width, bad label noise
/// and a conv model are refused by field.
#[test]
fn double_descent_shards_merge_and_bad_input_is_refused() {
    let (a, b) = sharded_and_whole_with(
        "double-descent",
        None,
        &["--config", "experiments/double_descent_digits.toml", "--name", "x"],
        2,
    );
    assert_eq!(stripped(&a), stripped(&b));
    let v: serde_json::Value = serde_json::from_str(&a).unwrap();
    let recs = v["records"].as_array().unwrap();
    // 2 seeds x 3 widths, each with the network, linearization, kernel and ticket
    assert_eq!(recs.len(), 6, "{a}");
    for r in recs {
        for m in ["network", "linearized", "kernel", "ticket"] {
            let e = r[m]["test"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&e), "{r}");
        }
    }
    assert_eq!(v["label_noise"].as_f64(), Some(0.2));
    let dir = tempfile::tempdir().unwrap();
    let cfg = "experiments/double_descent_digits.toml";
    let empty = dir.path().join("empty.toml");
    let text = std::fs::read_to_string(cfg).unwrap();
    std::fs::write(&empty, text.replace("widths = [4, 16, 64]", "widths = []")).unwrap();
    fails_with(
        &["double-descent", "--config", &empty.display().to_string()],
        dir.path(),
        &["double_descent.widths", "at least one width"],
    );
    fails_with(
        &["double-descent", "--config", cfg, "--widths", "0,4"],
        dir.path(),
        &["double_descent.widths"],
    );
    fails_with(
        &["double-descent", "--config", cfg, "--label-noise", "1.5"],
        dir.path(),
        &["data.label_noise"],
    );
    fails_with(
        &["double-descent", "--config", cfg, "--model", "conv"],
        dir.path(),
        &["model", "fully connected"],
    );
}

/// `ltk train --replicas K`: K seeds of the run, each in replica_<i>/ with
/// its metrics and parameters; replica 0 is the plain run (same seeds).
#[test]
fn replicas_are_the_runs_seeds() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, extra: &[&str]| {
        let mut c = ltk();
        c.args(["train", "--iterations", "30", "--quiet", "--name", name, "--out"])
            .arg(dir.path())
            .args(extra);
        c.output().unwrap()
    };
    let o = run("r", &["--replicas", "3"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("3 replicas (one after another)") && out.contains("mean ± sd"),
        "{out}"
    );
    let plain = run("p", &[]);
    assert!(plain.status.success());
    let read = |p: &str| lottery_tangent::params::ParamSet::load(&dir.path().join(p)).unwrap();
    assert_eq!(read("r/replica_0/final.safetensors"), read("p/final.safetensors"));
    assert_ne!(read("r/replica_1/final.safetensors"), read("p/final.safetensors"));
    assert!(dir.path().join("r/replica_2/metrics.csv").exists());
    // Far more replicas than memory holds: refused before training, naming the flag.
    let huge = run("h", &["--replicas", "100000000"]);
    assert!(!huge.status.success());
    let e = String::from_utf8_lossy(&huge.stderr);
    assert!(e.contains("--replicas") && e.contains("memory"), "{e}");
    let zero = run("z", &["--replicas", "0"]);
    assert!(!zero.status.success());
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--replicas"));
}

/// `ltk ntk`: kernels at init and at a run's weights, saved as safetensors
/// and .npy (a valid NumPy header, C order), with spectra and
/// kernel-regression accuracy; a non-MLP model is refused by name.
#[test]
fn ltk_ntk_saves_kernels_with_their_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = |args: &[&str]| {
        let mut c = ltk();
        c.args(args).args(["--quiet", "--out"]).arg(dir.path());
        c.output().unwrap()
    };
    let o = out(&[
        "ntk",
        "--kernels",
        "traced,full,analytic",
        "--examples",
        "40",
        "--test-examples",
        "30",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = dir.path().join("ntk");
    let npy = std::fs::read(run.join("kernels/traced.npy")).unwrap();
    assert_eq!(&npy[..8], b"\x93NUMPY\x01\x00");
    let hlen = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert_eq!((10 + hlen) % 64, 0);
    let header = std::str::from_utf8(&npy[10..10 + hlen]).unwrap();
    assert!(
        header.contains("'descr': '<f4'") && header.contains("'shape': (40, 40)"),
        "{header}"
    );
    assert_eq!(npy.len(), 10 + hlen + 4 * 40 * 40);
    let k = lottery_tangent::params::ParamSet::load(&run.join("kernels/full.safetensors")).unwrap();
    assert_eq!(k.get("kernel").unwrap().shape, vec![400, 400]);
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join("summary.json")).unwrap()).unwrap();
    let traced = &s["kernels"][0];
    assert_eq!(traced["name"], "traced");
    assert!(
        traced["regression"]["test_accuracy"].as_f64().unwrap() > 0.5,
        "{traced}"
    );
    assert!(std::fs::read_to_string(run.join("report.md"))
        .unwrap()
        .contains("| analytic | 40×40 |"));
    // At a trained network's weights.
    let t = out(&["train", "--iterations", "20", "--name", "t"]);
    assert!(t.status.success());
    let w = dir.path().join("t/final.safetensors");
    let o = out(&[
        "ntk",
        "--weights",
        w.to_str().unwrap(),
        "--examples",
        "20",
        "--test-examples",
        "0",
        "--name",
        "n2",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read_to_string(dir.path().join("n2/report.md"))
        .unwrap()
        .contains("final.safetensors"));
    let conv = out(&["ntk", "--set", "model.kind=\"conv4\"", "--name", "c"]);
    assert!(!conv.status.success());
    assert!(String::from_utf8_lossy(&conv.stderr).contains("expected an MLP"));
    // The defaults work on the embedded digits (449 test examples, fewer than 1,000).
    let d = out(&["ntk", "--examples", "30", "--name", "d"]);
    assert!(d.status.success(), "{}", String::from_utf8_lossy(&d.stderr));
    assert!(std::fs::read_to_string(dir.path().join("d/report.md"))
        .unwrap()
        .contains("449 test examples"));
    let bad = out(&["ntk", "--kernels", "tracd", "--name", "b"]);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--kernels"));
}

/// `--model` brings the model's paper training defaults (shown by
/// `show-config`); flags and config keys still win; `--width` multiplies a
/// ResNet's or VGG's channels and is refused for other models.
#[test]
fn a_models_training_defaults_follow_the_model_flag() {
    let show = |args: &[&str]| {
        let out = ltk().arg("show-config").args(args).output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, text, err) = show(&["--model", "resnet20", "--width", "4"]);
    assert!(ok, "{err}");
    assert!(err.contains("open_lth"), "{err}");
    for want in [
        "kind = \"resnet\"",
        "width = 64",
        "batch_size = 128",
        "epochs = 160.0",
        "momentum = 0.9",
        "milestone_epochs = [",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    let (ok, text, _) = show(&["--model", "conv4", "--lr", "0.001", "--batch-size", "32"]);
    assert!(ok);
    assert!(
        text.contains("kind = \"adam\"") && text.contains("lr = 0.001") && text.contains("batch_size = 32"),
        "{text}"
    );
    assert!(text.contains("iterations = 25000"), "{text}");
    // A VGG on 8x8 digits cannot run: the config still shows, with the reason.
    let (ok, text, err) = show(&["--model", "vgg16"]);
    assert!(ok && text.contains("kind = \"vgg\"") && err.contains("16x16"), "{err}");
    let (ok, _, err) = show(&["--model", "lenet5", "--width", "2"]);
    assert!(!ok && err.contains("--width"), "{err}");
    // The shipped configs set their optimizer: --model does not change it.
    let (ok, text, _) = show(&["--config", "experiments/imp_digits.toml", "--model", "conv2"]);
    assert!(ok && text.contains("kind = \"sgd\""), "{text}");
}

/// A model's default training settings train it: Conv-4 with Frankle &
/// Carbin's Adam 3e-4 (it diverged at step 6 with the generic SGD 0.1) and
/// ResNet-20 with open_lth's recipe, shortened, on the digits.
#[test]
fn a_models_default_run_does_not_diverge() {
    for model in ["conv4", "resnet20"] {
        let dir = tempfile::tempdir().unwrap();
        let out = ltk()
            .args(["train", "--model", model, "--iterations", "40", "--quiet", "--out"])
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{model}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8_lossy(&out.stdout);
        let acc: f64 = text
            .split("final test accuracy ")
            .nth(1)
            .and_then(|s| s.split('%').next())
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{model}: {text}"));
        assert!(acc > 30.0, "{model}: {acc}% after 40 steps\n{text}");
    }
}
