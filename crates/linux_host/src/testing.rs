//! Test fixtures for the unit tests of this crate and of the module crates
//! (enabled by the `testing` feature): a root folder holding given files,
//! to root a scripted [`crate::Host`] in, and the sorted names in a folder.

/// A temporary folder holding `files` (absolute paths inside the fake
/// root, with their bytes), parent folders created.
pub fn root_with<P: AsRef<str>, D: AsRef<[u8]>>(files: &[(P, D)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    for (path, data) in files {
        let full = dir.path().join(path.as_ref().trim_start_matches('/'));
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
        }
        std::fs::write(&full, data).unwrap_or_else(|e| panic!("{}: {e}", full.display()));
    }
    dir
}

/// The names in `folder`, sorted; none when it does not exist.
pub fn names_in(folder: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(folder)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}
