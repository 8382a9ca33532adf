//! Your own data as NumPy files (`--data numpy`): a directory of `.npy`
//! files and an `.npz` archive (stored and deflated entries, as `np.savez`
//! and `np.savez_compressed` write them), in the exact format, written here;
//! shapes, dtypes and label ranges checked with errors naming the array.

use std::io::Write;
use std::path::Path;
use std::process::Command;

use lottery_tangent::data::numpy;

/// One `.npy` (format 1.0) of `descr` with raw little-endian `data`.
fn npy(descr: &str, shape: &[usize], data: &[u8], fortran: bool) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut h = format!(
        "{{'descr': '{descr}', 'fortran_order': {}, 'shape': {shape}, }}",
        if fortran { "True" } else { "False" }
    );
    h.push_str(&" ".repeat((64 - (11 + h.len()) % 64) % 64));
    h.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(h.len() as u16).to_le_bytes());
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(data);
    out
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

fn i64s(v: &[i64]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// The four arrays: 6 train and 2 test images of 2x3x3, labels 0..3.
fn arrays() -> Vec<(&'static str, Vec<u8>)> {
    let xtr: Vec<f32> = (0..6 * 18).map(|i| i as f32 / 10.0).collect();
    let xte: Vec<f32> = (0..2 * 18).map(|i| -(i as f32)).collect();
    vec![
        ("x_train", npy("<f4", &[6, 2, 3, 3], &f32s(&xtr), false)),
        ("y_train", npy("<i8", &[6], &i64s(&[0, 1, 2, 3, 0, 1]), false)),
        ("x_test", npy("<f4", &[2, 2, 3, 3], &f32s(&xte), false)),
        ("y_test", npy("<i8", &[2], &i64s(&[3, 2]), false)),
    ]
}

fn write_npz(path: &Path, arrays: &[(&str, Vec<u8>)], deflate: bool) {
    let f = std::fs::File::create(path).unwrap();
    let mut z = zip::ZipWriter::new(f);
    let method = if deflate {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (n, b) in arrays {
        z.start_file(format!("{n}.npy"), opts).unwrap();
        z.write_all(b).unwrap();
    }
    z.finish().unwrap();
}

#[test]
fn a_directory_of_npy_files_and_npz_archives_load() {
    let d = tempfile::tempdir().unwrap();
    for (n, b) in arrays() {
        std::fs::write(d.path().join(format!("{n}.npy")), b).unwrap();
    }
    let s = numpy::load(d.path(), None).unwrap();
    assert_eq!(
        (s.train.len(), s.test.len(), s.train.shape, s.train.num_classes),
        (6, 2, [2, 3, 3], 4)
    );
    assert_eq!(s.train.labels, vec![0, 1, 2, 3, 0, 1]);
    assert_eq!(s.train.x[19], 1.9);
    assert_eq!(s.test.x[1], -1.0);
    for deflate in [false, true] {
        let p = d.path().join(format!("data_{deflate}.npz"));
        write_npz(&p, &arrays(), deflate);
        let z = numpy::load(&p, Some(10)).unwrap();
        assert_eq!(z.train.x, s.train.x);
        assert_eq!((z.test.labels.clone(), z.train.num_classes), (vec![3, 2], 10));
    }
    // Greyscale uint8 images [n, h, w] and vectors [n, d].
    let mut a = arrays();
    a[0] = ("x_train", npy("|u1", &[6, 3, 6], &[7u8; 6 * 18], false));
    a[2] = ("x_test", npy("|u1", &[2, 3, 6], &[9u8; 2 * 18], false));
    let p = d.path().join("u8.npz");
    write_npz(&p, &a, false);
    let g = numpy::load(&p, None).unwrap();
    assert_eq!((g.train.shape, g.train.x[0]), ([1, 3, 6], 7.0));
}

#[test]
fn bad_arrays_are_errors_naming_them() {
    let d = tempfile::tempdir().unwrap();
    let err = |a: Vec<(&str, Vec<u8>)>, classes: Option<usize>| -> String {
        let p = d.path().join("bad.npz");
        write_npz(&p, &a, false);
        numpy::load(&p, classes).unwrap_err().to_string()
    };
    let e = err(arrays()[..3].to_vec(), None);
    assert!(e.contains("y_test") && e.contains("bad.npz"), "{e}");
    let mut a = arrays();
    a[1] = ("y_train", npy("<i8", &[5], &i64s(&[0, 1, 2, 3, 0]), false));
    assert!(err(a, None).contains("`y_train` has shape [5]: expected [6]"));
    let mut a = arrays();
    a[3] = ("y_test", npy("<i8", &[2], &i64s(&[3, -1]), false));
    assert!(err(a, None).contains("`y_test`[1] = -1"));
    let e = err(arrays(), Some(3));
    assert!(e.contains("label 3") && e.contains("3 classes"), "{e}");
    let mut a = arrays();
    a[0] = ("x_train", npy(">f4", &[6, 2, 3, 3], &[0u8; 6 * 18 * 4], false));
    assert!(err(a, None).contains("dtype `>f4`"));
    let mut a = arrays();
    a[0] = ("x_train", npy("<f4", &[6, 2, 3, 3], &f32s(&[0.0; 6 * 18]), true));
    assert!(err(a, None).contains("Fortran"));
    let mut a = arrays();
    a[2] = ("x_test", npy("<f4", &[2, 18], &f32s(&[0.0; 36]), false));
    assert!(err(a, None).contains("`x_test` examples have shape"));
    let mut a = arrays();
    a[0] = ("x_train", npy("<f4", &[6, 2, 3, 3], &f32s(&[0.0; 10]), false));
    assert!(err(a, None).contains("data bytes"));
}

#[test]
fn ltk_trains_on_an_npz_file() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("mine.npz");
    write_npz(&p, &arrays(), true);
    let out = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_ltk"))
        .args(["train", "--data", "numpy", "--data-dir"])
        .arg(&p)
        .args([
            "--model",
            "mlp",
            "--hidden",
            "8",
            "--iterations",
            "3",
            "--batch-size",
            "3",
            "--quiet",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("mine (6 train / 2 test)"));
}
