//! Integration tests for `lottery_tangent::data`: the embedded digits, IDX
//! files (raw, gzipped, corrupt), splits, batch order and teacher data.

use lottery_tangent::data::{batch::BatchOrder, digits, idx, synthetic, Dataset, Preprocess, Split};
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------- digits

#[test]
fn digits_load_all() {
    let d = digits::load_all().unwrap();
    assert_eq!(d.len(), digits::NUM_EXAMPLES);
    assert_eq!(d.len(), 1797);
    assert_eq!(d.name, "digits");
    assert_eq!(d.shape, [1, 8, 8]);
    assert_eq!(d.dim(), 64);
    assert_eq!(d.x.len(), 1797 * 64);
    assert_eq!(d.num_classes, 10);
    assert_eq!(d.target_dim, 10);
    assert!(d.targets.is_none());
    assert!(d.x.iter().all(|&v| (0.0..=16.0).contains(&v) && v.fract() == 0.0));
    assert_eq!(d.x.iter().copied().fold(0.0, f32::max), 16.0);
    let classes: HashSet<u32> = d.labels.iter().copied().collect();
    assert_eq!(classes, (0..10).collect());
    // The first row of the UCI file is a zero.
    assert_eq!(d.labels[0], 0);
    assert_eq!(&d.x[..8], &[0.0, 0.0, 5.0, 13.0, 9.0, 1.0, 0.0, 0.0]);
}

#[test]
fn digits_split_is_deterministic() {
    let a = digits::load(0.25, 7).unwrap();
    let b = digits::load(0.25, 7).unwrap();
    let c = digits::load(0.25, 8).unwrap();
    assert_eq!(a.train, b.train);
    assert_eq!(a.test, b.test);
    assert_ne!(a.train, c.train);
    assert_ne!(a.test.labels, c.test.labels);
    assert_eq!(a.train.len() + a.test.len(), 1797);
    assert_eq!(a.test.len(), 449); // round(0.25 * 1797)
    assert!(a.validation.is_none());

    // train and test partition the rows: compare as multisets of rows.
    let all = digits::load_all().unwrap();
    let key = |d: &Dataset, i: usize| {
        let mut k: Vec<u32> = d.x[i * 64..(i + 1) * 64].iter().map(|&v| v as u32).collect();
        k.push(d.labels[i]);
        k
    };
    let mut whole: Vec<Vec<u32>> = (0..all.len()).map(|i| key(&all, i)).collect();
    let mut parts: Vec<Vec<u32>> = (0..a.train.len())
        .map(|i| key(&a.train, i))
        .chain((0..a.test.len()).map(|i| key(&a.test, i)))
        .collect();
    whole.sort();
    parts.sort();
    assert_eq!(whole, parts);
}

#[test]
fn digits_bad_fraction() {
    for f in [0.0, 1.0, -0.1, 2.0, f64::NAN] {
        let err = digits::load(f, 0).unwrap_err().to_string();
        assert!(err.contains("test fraction"), "{err}");
    }
}

// ---------------------------------------------------------------- IDX

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn pixels(n: usize, rows: usize, cols: usize, salt: usize) -> Vec<u8> {
    (0..n * rows * cols)
        .map(|i| ((i * 31 + salt * 7) % 256) as u8)
        .collect()
}

/// Writes an MNIST-style directory (optionally gzipping every file).
fn write_dir(dir: &Path, n_train: usize, n_test: usize, gz: bool) -> (Vec<u8>, Vec<u8>) {
    let (rows, cols) = (4, 3);
    let train_px = pixels(n_train, rows, cols, 1);
    let test_px = pixels(n_test, rows, cols, 2);
    let train_y: Vec<u8> = (0..n_train).map(|i| (i % 10) as u8).collect();
    let test_y: Vec<u8> = (0..n_test).map(|i| ((i * 3) % 10) as u8).collect();
    for (name, px) in [
        ("train-images-idx3-ubyte", &train_px),
        ("t10k-images-idx3-ubyte", &test_px),
    ] {
        let p = dir.join(name);
        idx::write_images(&p, rows, cols, px).unwrap();
        if gz {
            gzip_in_place(&p);
        }
    }
    for (name, y) in [
        ("train-labels-idx1-ubyte", &train_y),
        ("t10k-labels-idx1-ubyte", &test_y),
    ] {
        let p = dir.join(name);
        idx::write_labels(&p, y).unwrap();
        if gz {
            gzip_in_place(&p);
        }
    }
    (train_px, train_y)
}

fn gzip_in_place(p: &Path) {
    let raw = std::fs::read(p).unwrap();
    std::fs::write(gz_name(p), gzip(&raw)).unwrap();
    std::fs::remove_file(p).unwrap();
}

fn gz_name(p: &Path) -> PathBuf {
    let mut s = p.as_os_str().to_owned();
    s.push(".gz");
    PathBuf::from(s)
}

#[test]
fn idx_round_trip_raw_and_gz() {
    let tmp = tempfile::tempdir().unwrap();
    let px = pixels(5, 4, 3, 0);
    let labels = vec![0u8, 9, 3, 3, 1];
    let img = tmp.path().join("img");
    let lab = tmp.path().join("lab");
    idx::write_images(&img, 4, 3, &px).unwrap();
    idx::write_labels(&lab, &labels).unwrap();
    assert_eq!(std::fs::metadata(&img).unwrap().len(), 16 + 60);
    assert_eq!(idx::read_images(&img).unwrap(), (5, 4, 3, px.clone()));
    assert_eq!(idx::read_labels(&lab).unwrap(), labels);

    // Gzipped copies, detected by magic bytes even under a name without `.gz`.
    let img_gz = tmp.path().join("img-compressed");
    let lab_gz = tmp.path().join("lab.gz");
    std::fs::write(&img_gz, gzip(&std::fs::read(&img).unwrap())).unwrap();
    std::fs::write(&lab_gz, gzip(&std::fs::read(&lab).unwrap())).unwrap();
    assert_eq!(idx::read_images(&img_gz).unwrap(), (5, 4, 3, px));
    assert_eq!(idx::read_labels(&lab_gz).unwrap(), labels);
}

#[test]
fn idx_load_dir_raw_and_gz() {
    for gz in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("tiny-mnist");
        std::fs::create_dir(&dir).unwrap();
        let (train_px, train_y) = write_dir(&dir, 12, 7, gz);
        let split = idx::load_dir(&dir, 10).unwrap();
        assert_eq!(split.train.name, "tiny-mnist");
        assert_eq!(split.train.len(), 12);
        assert_eq!(split.test.len(), 7);
        assert_eq!(split.train.shape, [1, 4, 3]);
        assert_eq!(split.train.num_classes, 10);
        assert_eq!(split.test.num_classes, 10);
        assert_eq!(split.train.target_dim, 10);
        let want: Vec<f32> = train_px.iter().map(|&v| v as f32).collect();
        assert_eq!(split.train.x, want);
        let want_y: Vec<u32> = train_y.iter().map(|&v| v as u32).collect();
        assert_eq!(split.train.labels, want_y);
        assert!(split.validation.is_none());
    }
}

/// The number of classes is declared (10 unless the config says otherwise),
/// never inferred: a label out of range in either split is an error naming
/// the file, the index and the value.
#[test]
fn idx_labels_are_checked_against_the_declared_classes() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    idx::write_images(&d.join("train-images-idx3-ubyte"), 2, 2, &pixels(4, 2, 2, 0)).unwrap();
    idx::write_labels(&d.join("train-labels-idx1-ubyte"), &[0, 0, 0, 0]).unwrap();
    idx::write_images(&d.join("t10k-images-idx3-ubyte"), 2, 2, &pixels(2, 2, 2, 0)).unwrap();
    idx::write_labels(&d.join("t10k-labels-idx1-ubyte"), &[1, 0]).unwrap();
    let s = idx::load_dir(d, 10).unwrap();
    assert_eq!((s.train.num_classes, s.test.num_classes), (10, 10));

    // A training label of 10 or 200 does not make an 11- or 201-class task.
    for bad in [10u8, 200] {
        idx::write_labels(&d.join("train-labels-idx1-ubyte"), &[0, 3, bad, 1]).unwrap();
        let err = idx::load_dir(d, 10).unwrap_err().to_string();
        assert!(
            err.contains("train-labels-idx1-ubyte")
                && err.contains(&format!("label {bad} at index 2"))
                && err.contains("10 classes"),
            "{err}"
        );
    }
    // A declared larger set of classes accepts them.
    idx::write_labels(&d.join("train-labels-idx1-ubyte"), &[0, 13, 2, 1]).unwrap();
    assert_eq!(idx::load_dir(d, 14).unwrap().train.num_classes, 14);

    // The test split is checked the same way.
    idx::write_labels(&d.join("train-labels-idx1-ubyte"), &[0, 0, 0, 0]).unwrap();
    idx::write_labels(&d.join("t10k-labels-idx1-ubyte"), &[0, 14]).unwrap();
    let err = idx::load_dir(d, 14).unwrap_err().to_string();
    assert!(
        err.contains("t10k-labels-idx1-ubyte") && err.contains("label 14 at index 1"),
        "{err}"
    );
    assert!(idx::load_dir(d, 1).is_err());
}

fn err_of<T: std::fmt::Debug>(r: lottery_tangent::Result<T>) -> String {
    r.unwrap_err().to_string()
}

#[test]
fn idx_corrupt_magic() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("images-bad-magic");
    let lab = tmp.path().join("labels-bad-magic");
    idx::write_labels(&lab, &[1, 2, 3]).unwrap();
    idx::write_images(&img, 2, 2, &pixels(3, 2, 2, 0)).unwrap();
    // A label file read as images and vice versa.
    let err = err_of(idx::read_images(&lab));
    assert!(err.contains("labels-bad-magic") && err.contains("magic"), "{err}");
    let err = err_of(idx::read_labels(&img));
    assert!(err.contains("images-bad-magic") && err.contains("magic"), "{err}");
    // A flipped byte.
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[2] = 0x09;
    std::fs::write(&img, &bytes).unwrap();
    let err = err_of(idx::read_images(&img));
    assert!(err.contains("images-bad-magic"), "{err}");
    assert!(err.contains("0x00000903") && err.contains("0x00000803"), "{err}");
    // Too short to hold a magic number at all.
    std::fs::write(&img, [0u8, 0]).unwrap();
    let err = err_of(idx::read_images(&img));
    assert!(err.contains("images-bad-magic"), "{err}");
    // An empty file.
    std::fs::write(&img, []).unwrap();
    assert!(err_of(idx::read_images(&img)).contains("images-bad-magic"));
}

#[test]
fn idx_truncated_and_trailing() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("short-images");
    idx::write_images(&img, 4, 3, &pixels(5, 4, 3, 0)).unwrap();
    let full = std::fs::read(&img).unwrap();
    assert_eq!(full.len(), 76);

    std::fs::write(&img, &full[..70]).unwrap();
    let err = err_of(idx::read_images(&img));
    assert!(err.contains("short-images"), "{err}");
    assert!(err.contains("expected 76 bytes, got 70"), "{err}");

    // Truncated inside the header.
    std::fs::write(&img, &full[..10]).unwrap();
    let err = err_of(idx::read_images(&img));
    assert!(err.contains("short-images") && err.contains("got 10"), "{err}");

    let mut long = full.clone();
    long.push(0);
    std::fs::write(&img, &long).unwrap();
    let err = err_of(idx::read_images(&img));
    assert!(
        err.contains("short-images") && err.contains("expected 76 bytes, got 77"),
        "{err}"
    );

    let lab = tmp.path().join("short-labels");
    idx::write_labels(&lab, &[1, 2, 3, 4]).unwrap();
    let full = std::fs::read(&lab).unwrap();
    std::fs::write(&lab, &full[..10]).unwrap();
    let err = err_of(idx::read_labels(&lab));
    assert!(
        err.contains("short-labels") && err.contains("expected 12 bytes, got 10"),
        "{err}"
    );

    // Zero dimensions.
    let mut zero = full.clone();
    zero[4..8].copy_from_slice(&0u32.to_be_bytes());
    std::fs::write(&lab, &zero[..8]).unwrap();
    assert!(err_of(idx::read_labels(&lab)).contains("short-labels"));
    let mut zimg = std::fs::read(tmp.path().join("short-images")).unwrap();
    zimg[8..12].copy_from_slice(&0u32.to_be_bytes());
    zimg.truncate(16);
    std::fs::write(&img, &zimg).unwrap();
    let err = err_of(idx::read_images(&img));
    assert!(err.contains("short-images") && err.contains("nonzero"), "{err}");

    // A header claiming an absurd size must not allocate or panic.
    let mut huge = 0x0000_0803u32.to_be_bytes().to_vec();
    for _ in 0..3 {
        huge.extend_from_slice(&u32::MAX.to_be_bytes());
    }
    std::fs::write(&img, &huge).unwrap();
    assert!(err_of(idx::read_images(&img)).contains("short-images"));
}

#[test]
fn idx_truncated_or_corrupt_gzip() {
    let tmp = tempfile::tempdir().unwrap();
    let img = tmp.path().join("train-images-idx3-ubyte");
    idx::write_images(&img, 28, 28, &pixels(20, 28, 28, 3)).unwrap();
    let gz = gzip(&std::fs::read(&img).unwrap());
    let path = tmp.path().join("broken.gz");
    for cut in [3, 10, gz.len() / 2, gz.len() - 4, gz.len() - 1] {
        std::fs::write(&path, &gz[..cut]).unwrap();
        let err = err_of(idx::read_images(&path));
        assert!(err.contains("broken.gz"), "cut {cut}: {err}");
    }
    // Flipped bytes in the body: a CRC or deflate error, never a panic.
    let mut bad = gz.clone();
    let mid = bad.len() / 2;
    for b in &mut bad[mid..mid + 8] {
        *b ^= 0xa5;
    }
    std::fs::write(&path, &bad).unwrap();
    let err = err_of(idx::read_images(&path));
    assert!(err.contains("broken.gz"), "{err}");
    // Just the gzip magic.
    std::fs::write(&path, [0x1f, 0x8b]).unwrap();
    assert!(err_of(idx::read_labels(&path)).contains("broken.gz"));
}

#[test]
fn idx_count_mismatch() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_dir(d, 6, 4, false);
    idx::write_labels(&d.join("train-labels-idx1-ubyte"), &[1, 2, 3, 4, 5]).unwrap();
    let err = err_of(idx::load_dir(d, 10));
    assert!(err.contains("train-labels-idx1-ubyte"), "{err}");
    assert!(err.contains("5 labels") && err.contains("6 images"), "{err}");

    // Test images of another size than the training images.
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_dir(d, 6, 4, false);
    idx::write_images(&d.join("t10k-images-idx3-ubyte"), 3, 4, &pixels(4, 3, 4, 0)).unwrap();
    let err = err_of(idx::load_dir(d, 10));
    assert!(err.contains("t10k-images-idx3-ubyte") && err.contains("3x4"), "{err}");
}

#[test]
fn idx_missing_file() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_dir(d, 6, 4, true);
    std::fs::remove_file(d.join("t10k-labels-idx1-ubyte.gz")).unwrap();
    let err = err_of(idx::load_dir(d, 10));
    assert!(err.contains("t10k-labels-idx1-ubyte"), "{err}");
    assert!(err.contains("t10k-labels-idx1-ubyte.gz"), "{err}");
    assert!(err.contains("missing"), "{err}");

    let err = err_of(idx::load_dir(&d.join("no-such-dir"), 10));
    assert!(
        err.contains("no-such-dir") && err.contains("train-images-idx3-ubyte"),
        "{err}"
    );

    let err = err_of(idx::read_labels(&d.join("nothing-here")));
    assert!(err.contains("nothing-here"), "{err}");
}

#[test]
#[cfg_attr(
    not(fashion_mnist),
    ignore = "Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)"
)]
fn fashion_mnist_if_present() {
    let dir = Path::new("/usr/share/datasets/fashion-mnist");
    let split = idx::load_dir(dir, 10).unwrap();
    assert_eq!(split.train.name, "fashion-mnist");
    assert_eq!(split.train.len(), 60000);
    assert_eq!(split.test.len(), 10000);
    assert_eq!(split.train.shape, [1, 28, 28]);
    assert_eq!(split.train.dim(), 784);
    assert_eq!(split.train.x.len(), 60000 * 784);
    assert_eq!(split.train.num_classes, 10);
    assert!(split.train.x.iter().all(|&v| (0.0..=255.0).contains(&v)));
    let p = split.preprocess(Preprocess::Standardize);
    let n = p.train.x.len() as f64;
    let mean = p.train.x.iter().map(|&v| v as f64).sum::<f64>() / n;
    assert!(mean.abs() < 1e-3, "mean {mean}");
}

// ---------------------------------------------------------------- Dataset / Split

fn small(n: usize) -> Dataset {
    Dataset {
        name: "small".into(),
        x: (0..n * 2).map(|v| v as f32).collect(),
        labels: (0..n as u32).map(|i| i % 3).collect(),
        targets: None,
        target_dim: 3,
        shape: [1, 1, 2],
        num_classes: 3,
    }
}

fn small_split(n_train: usize, n_test: usize) -> Split {
    Split {
        train: small(n_train),
        test: small(n_test),
        validation: None,
    }
}

/// Row identities: the first feature of each row is `2 * original index`.
fn ids(d: &Dataset) -> Vec<usize> {
    (0..d.len()).map(|i| d.x[i * 2] as usize / 2).collect()
}

#[test]
fn dataset_subset_take_gather() {
    let d = small(5);
    assert_eq!(d.len(), 5);
    assert!(!d.is_empty());
    assert_eq!(d.dim(), 2);
    let s = d.subset(&[4, 1, 1]).unwrap();
    assert_eq!(s.x, vec![8.0, 9.0, 2.0, 3.0, 2.0, 3.0]);
    assert_eq!(s.labels, vec![1, 1, 1]);
    assert!(d.subset(&[0, 5]).is_err());
    assert_eq!(d.take(2).unwrap().x, vec![0.0, 1.0, 2.0, 3.0]);
    assert!(d.take(0).is_err());
    assert!(d.take(6).is_err());

    let (mut x, mut t, mut y) = (vec![99.0], vec![99.0], vec![99]);
    d.gather(&[2, 0], &mut x, &mut t, &mut y);
    assert_eq!(x, vec![4.0, 5.0, 0.0, 1.0]);
    assert_eq!(t, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
    assert_eq!(y, vec![2, 0]);

    // Regression targets are copied as they are.
    let mut r = small(3);
    r.targets = Some(vec![0.5, -1.0, 2.0, 3.0, 4.0, 5.0]);
    r.target_dim = 2;
    let mut row = [0.0; 2];
    r.target_row(1, &mut row);
    assert_eq!(row, [2.0, 3.0]);
    r.gather(&[2], &mut x, &mut t, &mut y);
    assert_eq!(t, vec![4.0, 5.0]);
    assert_eq!(r.subset(&[2, 0]).unwrap().targets, Some(vec![4.0, 5.0, 0.5, -1.0]));

    let mut sc = small(2);
    sc.scale(0.5);
    assert_eq!(sc.x, vec![0.0, 0.5, 1.0, 1.5]);
}

#[test]
fn split_train_size() {
    let s = small_split(20, 5).with_train_size(8, 3).unwrap();
    assert_eq!(s.train.len(), 8);
    let id = ids(&s.train);
    assert!(id.windows(2).all(|w| w[0] < w[1]), "original order kept: {id:?}");
    assert_eq!(ids(&small_split(20, 5).with_train_size(8, 3).unwrap().train), id);
    assert_ne!(ids(&small_split(20, 5).with_train_size(8, 4).unwrap().train), id);
    // Nested for the same seed.
    let bigger: HashSet<usize> = ids(&small_split(20, 5).with_train_size(12, 3).unwrap().train)
        .into_iter()
        .collect();
    assert!(id.iter().all(|i| bigger.contains(i)));
    // n == len keeps everything in order.
    let all = small_split(20, 5).with_train_size(20, 9).unwrap();
    assert_eq!(all.train, small(20));
    assert!(small_split(20, 5).with_train_size(21, 0).is_err());
    assert!(small_split(20, 5).with_train_size(0, 0).is_err());

    let t = small_split(20, 5).with_test_size(3).unwrap();
    assert_eq!(ids(&t.test), vec![0, 1, 2]);
    assert!(small_split(20, 5).with_test_size(6).is_err());
}

#[test]
fn split_validation() {
    let s = small_split(20, 5).with_validation(6, 11).unwrap();
    let v = s.validation.as_ref().unwrap();
    assert_eq!((s.train.len(), v.len(), s.test.len()), (14, 6, 5));
    let tr: HashSet<usize> = ids(&s.train).into_iter().collect();
    let va: HashSet<usize> = ids(v).into_iter().collect();
    assert!(tr.is_disjoint(&va));
    assert_eq!(tr.union(&va).count(), 20);
    let again = small_split(20, 5).with_validation(6, 11).unwrap();
    assert_eq!(again.validation.as_ref(), Some(v));
    let other = small_split(20, 5).with_validation(6, 12).unwrap();
    assert_ne!(other.validation.as_ref(), Some(v));

    assert!(small_split(20, 5).with_validation(20, 0).is_err());
    assert!(small_split(20, 5).with_validation(25, 0).is_err());
    assert!(small_split(20, 5).with_validation(0, 0).unwrap().validation.is_none());
    assert!(s.with_validation(2, 0).is_err()); // already has one
}

#[test]
fn split_preprocess_fits_on_train() {
    let mut sp = small_split(4, 2); // train x = 0..8, test x = 0..4
    sp.test.x = vec![14.0, 7.0, 0.0, 3.5];
    let scaled = sp.clone().with_validation(1, 0).unwrap().preprocess(Preprocess::Scale);
    let tr_max = scaled.train.x.iter().copied().fold(0.0, f32::max);
    assert!(tr_max <= 1.0);
    assert_eq!(scaled.test.x, vec![2.0, 1.0, 0.0, 0.5]); // divided by the train max 7
    assert!(scaled.validation.is_some());

    let st = sp.clone().preprocess(Preprocess::Standardize);
    let n = st.train.x.len() as f32;
    let mean = st.train.x.iter().sum::<f32>() / n;
    let var = st.train.x.iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-4, "{mean} {var}");
    // test uses train statistics: raw mean 3.5, std sqrt(5.25).
    let want = (14.0 - 3.5) / 5.25f32.sqrt();
    assert!((st.test.x[0] - want).abs() < 1e-4);

    assert_eq!(sp.clone().preprocess(Preprocess::None).train, sp.train);
    // All-zero data: no division by zero.
    let mut z = small_split(3, 2);
    z.train.x.iter_mut().for_each(|v| *v = 0.0);
    let z = z.preprocess(Preprocess::Standardize);
    assert!(z.train.x.iter().chain(&z.test.x).all(|v| v.is_finite()));
    let z = small_split(3, 2);
    let mut zz = z.clone();
    zz.train.x.iter_mut().for_each(|v| *v = 0.0);
    assert!(zz.preprocess(Preprocess::Scale).test.x.iter().all(|v| v.is_finite()));
}

#[test]
fn preprocess_serde_names() {
    // snake_case names as used in config files.
    for (p, s) in [
        (Preprocess::None, "\"none\""),
        (Preprocess::Scale, "\"scale\""),
        (Preprocess::Standardize, "\"standardize\""),
    ] {
        assert_eq!(serde_json::to_string(&p).unwrap(), s);
        assert_eq!(serde_json::from_str::<Preprocess>(s).unwrap(), p);
    }
}

// ---------------------------------------------------------------- BatchOrder

fn epoch(b: &mut BatchOrder, e: usize) -> Vec<usize> {
    let bpe = b.batches_per_epoch();
    (e * bpe..(e + 1) * bpe).flat_map(|s| b.batch(s).to_vec()).collect()
}

#[test]
fn batch_order_covers_each_index_once() {
    let mut b = BatchOrder::new(100, 10, 5).unwrap();
    assert_eq!(b.batches_per_epoch(), 10);
    for e in 0..3 {
        let mut seen = epoch(&mut b, e);
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
    }
    // Incomplete last batch dropped: every batch full, no repeats in an epoch.
    let mut b = BatchOrder::new(10, 4, 5).unwrap();
    assert_eq!(b.batches_per_epoch(), 2);
    assert_eq!(b.epoch_of(1), 0);
    assert_eq!(b.epoch_of(2), 1);
    for e in 0..4 {
        let seen = epoch(&mut b, e);
        assert_eq!(seen.len(), 8);
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 8);
    }
    assert!(BatchOrder::new(0, 1, 0).is_err());
    assert!(BatchOrder::new(3, 0, 0).is_err());
    assert!(BatchOrder::new(3, 4, 0).is_err());
}

#[test]
fn batch_order_seeds_and_epochs() {
    let mut a = BatchOrder::new(64, 8, 1).unwrap();
    let mut b = BatchOrder::new(64, 8, 1).unwrap();
    let mut c = BatchOrder::new(64, 8, 2).unwrap();
    for e in 0..3 {
        assert_eq!(epoch(&mut a, e), epoch(&mut b, e));
        assert_ne!(epoch(&mut a, e), epoch(&mut c, e));
    }
    assert_ne!(epoch(&mut a, 0), epoch(&mut a, 1));
    assert_ne!(epoch(&mut a, 1), epoch(&mut a, 2));
}

#[test]
fn batch_order_random_access_matches_sequential() {
    let mut seq = BatchOrder::new(50, 7, 42).unwrap();
    let bpe = seq.batches_per_epoch();
    let sequential: Vec<Vec<usize>> = (0..5 * bpe).map(|s| seq.batch(s).to_vec()).collect();
    let mut rnd = BatchOrder::new(50, 7, 42).unwrap();
    let steps = [17, 3, 34, 0, 8, 7, 33, 16, 1, 20, 34, 6];
    for &s in &steps {
        assert_eq!(rnd.batch(s), sequential[s].as_slice(), "step {s}");
        // A fresh order (as after resuming) agrees too.
        let mut fresh = BatchOrder::new(50, 7, 42).unwrap();
        assert_eq!(fresh.batch(s), sequential[s].as_slice());
    }
}

mod prop {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn batch_is_pure_function_of_step(n in 1usize..200, bs_frac in 0.0f64..1.0, seed: u64, steps in proptest::collection::vec(0usize..500, 1..8)) {
            let bs = 1 + ((n - 1) as f64 * bs_frac) as usize;
            let mut a = BatchOrder::new(n, bs, seed).unwrap();
            for &s in &steps {
                let got = a.batch(s).to_vec();
                let mut fresh = BatchOrder::new(n, bs, seed).unwrap();
                prop_assert_eq!(&got, &fresh.batch(s).to_vec());
                prop_assert_eq!(got.len(), bs);
                prop_assert!(got.iter().all(|&i| i < n));
                prop_assert_eq!(got.iter().collect::<HashSet<_>>().len(), bs);
            }
        }
    }
}

// ---------------------------------------------------------------- teacher data

#[test]
fn teacher_data_is_deterministic() {
    let a = synthetic::teacher_regression(50, 20, 6, 3, 16, 9).unwrap();
    let b = synthetic::teacher_regression(50, 20, 6, 3, 16, 9).unwrap();
    let c = synthetic::teacher_regression(50, 20, 6, 3, 16, 10).unwrap();
    assert_eq!(a.train, b.train);
    assert_eq!(a.test, b.test);
    assert_ne!(a.train, c.train);
    assert_eq!(a.train.shape, [1, 1, 6]);
    assert_eq!(a.train.x.len(), 50 * 6);
    assert_eq!(a.train.target_dim, 3);
    assert_eq!(a.train.num_classes, 3);
    let t = a.train.targets.as_ref().unwrap();
    assert_eq!(t.len(), 50 * 3);
    assert!(t.iter().all(|v| v.is_finite()) && t.iter().any(|&v| v != 0.0));
    for i in 0..50 {
        let row = &t[i * 3..(i + 1) * 3];
        let best = (0..3).fold(0, |b, k| if row[k] > row[b] { k } else { b });
        assert_eq!(a.train.labels[i] as usize, best);
    }
    assert_ne!(a.train.x[..6], a.test.x[..6]);

    let k = synthetic::teacher_classification(50, 20, 6, 3, 16, 9).unwrap();
    assert!(k.train.targets.is_none());
    assert_eq!(k.train.target_dim, 3);
    assert_eq!(k.train.labels, a.train.labels);
    assert_eq!(k.train.x, a.train.x);
    // Several classes actually occur.
    assert!(k.train.labels.iter().collect::<HashSet<_>>().len() > 1);

    // The test set does not depend on n_train; bigger train sets extend smaller ones.
    let d = synthetic::teacher_regression(80, 20, 6, 3, 16, 9).unwrap();
    assert_eq!(d.test, a.test);
    assert_eq!(d.train.x[..300], a.train.x[..]);

    assert!(synthetic::teacher_regression(0, 1, 1, 1, 1, 0).is_err());
    assert!(synthetic::teacher_regression(1, 0, 1, 1, 1, 0).is_err());
    assert!(synthetic::teacher_regression(1, 1, 0, 1, 1, 0).is_err());
    assert!(synthetic::teacher_regression(1, 1, 1, 0, 1, 0).is_err());
    assert!(synthetic::teacher_regression(1, 1, 1, 1, 0, 0).is_err());
    assert!(synthetic::teacher_regression(1, 1, 1, 1, 1, 0).is_ok());
    assert!(synthetic::teacher_classification(1, 1, 1, 1, 1, 0).is_err());
}
