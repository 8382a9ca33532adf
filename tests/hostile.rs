//! Hostile input through the real binaries: each case checks the exit code,
//! that the message names the culprit, and that nothing outside the run
//! directory changed (a listing of the working directory before and after).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn ltk(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ltk"));
    c.current_dir(cwd);
    c
}

fn ntk_compare(cwd: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_ntk_compare"));
    c.current_dir(cwd);
    c
}

/// Every file under `root` with its contents (directories as empty entries).
fn listing(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().to_path_buf();
            let meta = std::fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                out.insert(rel, Vec::new());
                stack.push(p);
            } else if meta.file_type().is_symlink() {
                out.insert(
                    rel,
                    std::fs::read_link(&p).unwrap().to_string_lossy().as_bytes().to_vec(),
                );
            } else {
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

/// A working directory with the user's files and an earlier run.
fn workdir() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("precious.txt"), "the user's notes\n").unwrap();
    std::fs::write(d.path().join("b.toml"), "name = \"b\"\n").unwrap();
    std::fs::create_dir_all(d.path().join("runs/earlier")).unwrap();
    std::fs::write(d.path().join("runs/earlier/summary.json"), "{}").unwrap();
    d
}

fn fails_naming(out: &Output, words: &[&str]) -> String {
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "expected a failure; stderr: {err}");
    assert_eq!(out.status.code(), Some(1), "a clean error exit, not a crash: {err}");
    for w in words {
        assert!(err.contains(w), "the message should name {w:?}: {err}");
    }
    err
}

/// `ltk train --out runs --name NAME --quiet` with `extra` flags, in `w`.
fn train(w: &Path, name: &str, extra: &[&str]) -> Output {
    ltk(w)
        .args(["train", "--out", "runs", "--quiet", "--name", name])
        .args(extra)
        .output()
        .unwrap()
}

/// `ltk train --config CONFIG --out runs --iterations 2 --quiet`, in `w`.
fn train_config(w: &Path, config: &str) -> Output {
    ltk(w)
        .args([
            "train",
            "--config",
            config,
            "--out",
            "runs",
            "--iterations",
            "2",
            "--quiet",
        ])
        .output()
        .unwrap()
}

#[test]
fn run_names_that_leave_the_runs_folder_are_refused_and_nothing_is_removed() {
    let d = workdir();
    let w = d.path();
    let before = listing(w);
    for name in ["..", ".", "", "a\nb", " x"] {
        let out = train(w, name, &["--iterations", "2", "--force"]);
        fails_naming(&out, &["run name", &format!("{name:?}")]);
        assert_eq!(listing(w), before, "ltk train --name {name:?} changed files");
    }
    // The same through a config file, ntk_compare and subset-sum.
    std::fs::write(w.join("up.toml"), "name = \"..\"\n").unwrap();
    let before = listing(w);
    let out = ltk(w)
        .args(["train", "--config", "up.toml", "--out", "runs", "--force", "--quiet"])
        .output()
        .unwrap();
    fails_naming(&out, &["run name", "\"..\""]);
    let out = ntk_compare(w)
        .args(["--name", "..", "--force", "--out", "runs"])
        .output()
        .unwrap();
    fails_naming(&out, &["run name", "\"..\""]);
    let out = ltk(w)
        .args(["subset-sum", "--name", "..", "--force", "--out", "runs"])
        .output()
        .unwrap();
    fails_naming(&out, &["--name", "\"..\""]);
    assert_eq!(listing(w), before);
}

#[test]
fn force_empties_only_a_run_directory_of_this_tool() {
    let d = workdir();
    let w = d.path();
    let short = ["--iterations", "2", "--force"];
    // A directory of the user's files under the run's name.
    std::fs::create_dir_all(w.join("runs/mine")).unwrap();
    std::fs::write(w.join("runs/mine/notes.txt"), "keep me").unwrap();
    let before = listing(w);
    let out = train(w, "mine", &short);
    fails_naming(
        &out,
        &["runs/mine", "without run.json", "notes.txt", "nothing was removed"],
    );
    assert_eq!(listing(w), before);

    // A symbolic link to a directory outside --out.
    std::os::unix::fs::symlink(w, w.join("runs/away")).unwrap();
    let before = listing(w);
    fails_naming(&train(w, "away", &short), &["runs/away", "symbolic link"]);
    assert_eq!(listing(w), before);

    // A file, and a dangling link, where the run directory would be.
    std::fs::write(w.join("runs/afile"), "x").unwrap();
    std::os::unix::fs::symlink(w.join("nowhere"), w.join("runs/dangling")).unwrap();
    let before = listing(w);
    for (name, why) in [("afile", "a file of that name"), ("dangling", "does not exist")] {
        fails_naming(&train(w, name, &["--iterations", "2"]), &[&format!("runs/{name}"), why]);
    }
    assert_eq!(listing(w), before);

    // A real run: --force lists what it removes before removing it.
    assert!(train(w, "t", &["--iterations", "2"]).status.success());
    let out = train(w, "t", &["--iterations", "3", "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--force: removing") && err.contains("summary.json"),
        "{err}"
    );

    // A run copied under another name: its run.json names the original.
    let copy = w.join("runs/copy");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["run.json", "config.toml", "summary.json"] {
        std::fs::copy(w.join("runs/t").join(f), copy.join(f)).unwrap();
    }
    let before = listing(w);
    let out = train(w, "copy", &["--iterations", "5", "--force"]);
    fails_naming(&out, &["runs/copy", "written for run directory `t`"]);
    assert_eq!(listing(w), before);

    // A damaged run.json beside the run's config.toml does not block --force.
    std::fs::write(w.join("runs/t/run.json"), "{not json").unwrap();
    let out = train(w, "t", &["--iterations", "4", "--force"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Writes `<name>.toml`: a run `name` on the IDX directory `name`, with
/// `extra` lines in its `[data]` table.
fn idx_config(w: &Path, name: &str, extra: &str) {
    let text =
        format!("name = \"{name}\"\n[data]\nsource = \"idx\"\ndir = \"{name}\"\npreprocess = \"scale\"\n{extra}");
    std::fs::write(w.join(format!("{name}.toml")), text).unwrap();
}

/// A tiny ntk_compare run: one width, one seed, two steps, 20 examples.
const TINY_NTK: [&str; 10] = [
    "--widths",
    "8",
    "--steps",
    "2",
    "--seeds",
    "0",
    "--train-size",
    "20",
    "--test-size",
    "10",
];

/// Writes a tiny MNIST-format directory (4x4 images) with `train_labels`.
fn idx_dir(dir: &Path, train_labels: &[u8], test_labels: &[u8]) {
    use lottery_tangent::data::idx;
    std::fs::create_dir_all(dir).unwrap();
    let px = |n: usize| (0..n * 16).map(|i| (i * 37 % 256) as u8).collect::<Vec<u8>>();
    idx::write_images(&dir.join("train-images-idx3-ubyte"), 4, 4, &px(train_labels.len())).unwrap();
    idx::write_labels(&dir.join("train-labels-idx1-ubyte"), train_labels).unwrap();
    idx::write_images(&dir.join("t10k-images-idx3-ubyte"), 4, 4, &px(test_labels.len())).unwrap();
    idx::write_labels(&dir.join("t10k-labels-idx1-ubyte"), test_labels).unwrap();
}

#[test]
fn an_out_of_range_label_in_either_split_is_an_error_naming_file_index_and_value() {
    let d = workdir();
    let w = d.path();
    let mut train: Vec<u8> = (0..40).map(|i| (i % 10) as u8).collect();
    train[7] = 200;
    let test: Vec<u8> = (0..20).map(|i| (i % 10) as u8).collect();
    idx_dir(&w.join("bad"), &train, &test);
    train[7] = 10;
    idx_dir(&w.join("eleven"), &train, &test);
    idx_config(w, "bad", "");
    idx_config(w, "eleven", "");
    let before = listing(w);
    for (cfg, value) in [
        ("bad.toml", "label 200 at index 7"),
        ("eleven.toml", "label 10 at index 7"),
    ] {
        let out = train_config(w, cfg);
        fails_naming(&out, &["train-labels-idx1-ubyte", value, "10 classes"]);
    }
    let out = ntk_compare(w)
        .args(["--data", "bad", "--out", "runs", "--quiet"])
        .args(TINY_NTK)
        .output()
        .unwrap();
    fails_naming(&out, &["train-labels-idx1-ubyte", "label 200 at index 7"]);
    assert_eq!(listing(w), before, "a refused run leaves nothing behind");

    // The test split too; a declared larger class count accepts label 10.
    let mut test2 = test.clone();
    test2[3] = 12;
    idx_dir(&w.join("t12"), &train, &test2);
    idx_config(w, "t12", "num_classes = 11\n");
    let out = train_config(w, "t12.toml");
    fails_naming(&out, &["t10k-labels-idx1-ubyte", "label 12 at index 3", "11 classes"]);
}

/// A rate far above the stable one: every (width, seed) diverges, and the
/// run finishes about as fast as a normal one, reporting the divergences.
#[test]
fn a_diverging_ntk_compare_finishes_and_reports_the_divergence() {
    let d = workdir();
    let w = d.path();
    for lr in ["100", "2"] {
        let mut child = ntk_compare(w)
            .args([
                "--widths", "16,32,64", "--steps", "20", "--seeds", "0,1", "--lr", lr, "--quiet",
            ])
            .args(["--out", "runs", "--name", &format!("lr{lr}")])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let t = std::time::Instant::now();
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if t.elapsed() > std::time::Duration::from_secs(120) {
                let _ = child.kill();
                panic!("ntk_compare --lr {lr} still running after 120 s (a normal run of this size takes seconds)");
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let out = child.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("diverged at step"), "{text}");
    }
}

#[test]
fn a_size_that_cannot_fit_is_refused_with_the_estimate_and_the_flag() {
    let d = workdir();
    let w = d.path();
    let before = listing(w);
    let out = ntk_compare(w)
        .args(["--widths", "200000", "--out", "runs"])
        .output()
        .unwrap();
    fails_naming(&out, &["width 200000", "GiB", "--widths"]);
    let out = ltk(w)
        .args(["train", "--model", "mlp", "--hidden", "200000,200000", "--out", "runs"])
        .output()
        .unwrap();
    fails_naming(&out, &["GiB", "--hidden"]);
    assert_eq!(listing(w), before, "no run directory and no .lock left behind");
}

#[test]
fn checks_that_fail_leave_no_run_directory_behind() {
    let d = workdir();
    let w = d.path();
    let before = listing(w);
    let out = ntk_compare(w)
        .args(["--batch-size", "0", "--widths", "8", "--out", "runs", "--name", "b0"])
        .output()
        .unwrap();
    fails_naming(&out, &["batch_size"]);
    let out = ntk_compare(w)
        .args([
            "--train-size",
            "100000",
            "--widths",
            "8",
            "--out",
            "runs",
            "--name",
            "big",
        ])
        .output()
        .unwrap();
    fails_naming(&out, &["100000"]);
    let out = ltk(w)
        .args(["subset-sum", "--grid", "1", "--out", "runs", "--name", "g1"])
        .output()
        .unwrap();
    fails_naming(&out, &["grid"]);
    assert_eq!(listing(w), before);
    // The corrected command then runs.
    let out = ntk_compare(w)
        .args(TINY_NTK)
        .args(["--out", "runs", "--name", "b0", "--quiet"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[cfg(unix)]
#[test]
fn results_honour_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let w = d.path();
    let out = Command::new("sh")
        .current_dir(w)
        .arg("-c")
        .arg(format!(
            "umask 022 && exec '{}' train --iterations 2 --quiet --out runs --name u",
            env!("CARGO_BIN_EXE_ltk")
        ))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for f in [
        "summary.json",
        "config.toml",
        "run.json",
        "metrics.json",
        "final.safetensors",
        "figures/accuracy.png",
    ] {
        let mode = std::fs::metadata(w.join("runs/u").join(f))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o644, "{f}: {mode:o}");
    }
}

#[test]
fn locks_say_who_holds_them_and_a_reused_pid_is_taken_over() {
    use lottery_tangent::runner::context::RunLock;
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let stat = std::fs::read_to_string("/proc/1/stat").unwrap();
    let ticks: u64 = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .nth(19)
        .unwrap()
        .parse()
        .unwrap();
    let lock = |pid: u32, host: &str, ticks: u64| {
        serde_json::json!({"pid": pid, "host": host.trim(), "boot_id": boot.trim(), "start_ticks": ticks}).to_string()
    };
    // pid 1 with its own start time: a live holder, refused with the command to clear it.
    std::fs::write(root.join(".lock"), lock(1, &host, ticks)).unwrap();
    let e = RunLock::acquire(root).unwrap_err().to_string();
    assert!(e.contains("running process 1") && e.contains("rm '"), "{e}");
    // pid 1 with another start time: the pid was reused, the lock is stale.
    std::fs::write(root.join(".lock"), lock(1, &host, ticks + 1)).unwrap();
    drop(RunLock::acquire(root).unwrap());
    // A lock of another host (a shared file system) is never taken over.
    std::fs::write(root.join(".lock"), lock(4_000_000, "another-node", 5)).unwrap();
    let e = RunLock::acquire(root).unwrap_err().to_string();
    assert!(e.contains("another-node") && e.contains("rm '"), "{e}");
    // `ltk plot` waits its turn too.
    std::fs::write(root.join("metrics.json"), "[]").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ltk"))
        .arg("plot")
        .arg(root)
        .output()
        .unwrap();
    fails_naming(&out, &["locked by process 4000000 on host another-node"]);
}

#[test]
fn merge_refuses_misuse_and_gives_a_complete_run() {
    let d = tempfile::tempdir().unwrap();
    let w = d.path();
    std::fs::write(
        w.join("s.toml"),
        "name = \"s\"\n[model]\nkind = \"mlp\"\nhidden = [16]\n[train]\niterations = 20\nbatch_size = 32\n[imp]\nrounds = 1\nseeds = [0, 1, 2]\n",
    )
    .unwrap();
    for i in 0..2 {
        let out = ltk(w)
            .args([
                "imp",
                "--config",
                "s.toml",
                "--out",
                "runs",
                "--quiet",
                "--shard",
                &format!("{i}/2"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let merge = |args: &[&str]| ltk(w).arg("merge").args(args).output().unwrap();
    let before = listing(w);
    let out = merge(&["runs/s.shard-0-of-2", "runs/s.shard-0-of-2", "runs/s.shard-1-of-2"]);
    fails_naming(&out, &["each shard once", "runs/s.shard-0-of-2"]);
    let out = merge(&[
        "runs/s.shard-0-of-2",
        "runs/s.shard-1-of-2",
        "--into",
        "runs/s.shard-1-of-2",
    ]);
    fails_naming(&out, &["merge target", "shard runs/s.shard-1-of-2 itself"]);
    let out = merge(&["runs/s.shard-0-of-2"]);
    fails_naming(&out, &["missing: s.shard-1-of-2"]);
    assert_eq!(listing(w), before, "a refused merge leaves nothing behind");

    // A unit present in two shards whose records differ only in wall time.
    let unit = std::fs::read_to_string(w.join("runs/s.shard-0-of-2/units/seed_0.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&unit).unwrap();
    v["seconds"] = serde_json::json!(12345.0);
    std::fs::write(w.join("runs/s.shard-1-of-2/units/seed_0.json"), v.to_string()).unwrap();
    let out = merge(&["runs/s.shard-0-of-2", "runs/s.shard-1-of-2"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // The merged run holds the units' artifacts, not only the summary.
    for seed in 0..3 {
        assert!(
            w.join(format!("runs/s/seed_{seed}/rewind.safetensors")).exists(),
            "seed {seed}"
        );
    }
    // The merged run is not a shard, and no target lies inside a shard.
    let out = merge(&["runs/s"]);
    fails_naming(&out, &["not a shard"]);
    let out = merge(&[
        "runs/s.shard-0-of-2",
        "runs/s.shard-1-of-2",
        "--into",
        "runs/s.shard-0-of-2/m",
    ]);
    fails_naming(&out, &["inside shard"]);

    // More shards than units: a shard with no unit of its own stays for the merge.
    for i in 0..4 {
        let out = ltk(w)
            .args([
                "imp",
                "--config",
                "s.toml",
                "--out",
                "four",
                "--quiet",
                "--shard",
                &format!("{i}/4"),
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = merge(&[
        "four/s.shard-0-of-4",
        "four/s.shard-1-of-4",
        "four/s.shard-2-of-4",
        "four/s.shard-3-of-4",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
