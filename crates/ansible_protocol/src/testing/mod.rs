//! What every module's tests share (enabled by the `testing` feature):
//! typed options from JSON, the check that the sidecar documentation lists
//! exactly the option struct's fields and names the module
//! ([`sidecar_test!`](crate::sidecar_test) writes that test), and the
//! contract tests of the binary ([`contract`]).

pub mod contract;

use serde::de::DeserializeOwned;
use serde_yaml::Value;

use crate::options::option_names;
use crate::Module;

/// Options of type `T` from a JSON object, converted as the entry point
/// converts them; panics on invalid options (a test's own mistake).
pub fn options<T: DeserializeOwned>(json: serde_json::Value) -> T {
    match json {
        serde_json::Value::Object(map) => {
            crate::options::from_value(map).unwrap_or_else(|e| panic!("invalid options: {e}"))
        }
        other => panic!("options must be an object, got {other}"),
    }
}

/// The unit test that the module's sidecar (`<crate>/<name>.yml`, given
/// relative to the calling file) documents exactly its options:
/// `ansible_protocol::sidecar_test!(KmodUpdate, "../kmod_update.yml");`.
#[macro_export]
macro_rules! sidecar_test {
    ($module:ty, $sidecar:literal) => {
        #[test]
        fn sidecar_documents_exactly_the_options() {
            let sidecar = include_str!($sidecar);
            assert_eq!($crate::testing::check_sidecar::<$module>(sidecar), Ok(()));
        }
    };
}

/// `Err` describing the difference when the sidecar `<module>.yml` text does
/// not document exactly `M`'s options, or names another module.
pub fn check_sidecar<M: Module>(sidecar: &str) -> Result<(), String> {
    let doc: Value =
        serde_yaml::from_str(sidecar).map_err(|e| format!("sidecar is not YAML: {e}"))?;
    let mut documented: Vec<String> = doc["DOCUMENTATION"]["options"]
        .as_mapping()
        .map(|m| {
            m.keys()
                .filter_map(|k| k.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let mut declared: Vec<String> = option_names::<M::Options>()
        .iter()
        .map(|s| s.to_string())
        .collect();
    documented.sort();
    declared.sort();
    if documented != declared {
        return Err(format!(
            "sidecar documents {documented:?}, the option struct has {declared:?}"
        ));
    }
    if doc["DOCUMENTATION"]["module"].as_str() != Some(M::NAME) {
        return Err(format!("sidecar's DOCUMENTATION.module is not {}", M::NAME));
    }
    for key in ["EXAMPLES", "RETURN"] {
        if doc[key].is_null() {
            return Err(format!("sidecar has no {key}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Context, Response};

    struct Tiny;

    #[derive(serde::Deserialize, serde::Serialize)]
    struct TinyOptions {
        name: String,
        force: bool,
    }

    impl Module for Tiny {
        const NAME: &'static str = "tiny";
        type Host = ();
        type Options = TinyOptions;
        type Plan = ();
        type Return = ();
        fn plan(_: TinyOptions, _: &Context, _: &()) -> anyhow::Result<()> {
            Ok(())
        }
        fn preview(_: (), _: &Context) -> Response<()> {
            Response::default()
        }
        fn apply(_: (), _: &Context, _: &()) -> anyhow::Result<Response<()>> {
            Ok(Response::default())
        }
    }

    #[test]
    fn mismatches_are_reported() {
        let good = "DOCUMENTATION: {module: tiny, options: {force: {}, name: {}}}\nEXAMPLES: x\nRETURN: {}\n";
        assert_eq!(check_sidecar::<Tiny>(good), Ok(()));
        let missing = good.replace("force: {}, ", "");
        assert_eq!(
            check_sidecar::<Tiny>(&missing),
            Err("sidecar documents [\"name\"], the option struct has [\"force\", \"name\"]".into())
        );
        let renamed = good.replace("module: tiny", "module: other");
        assert!(check_sidecar::<Tiny>(&renamed).is_err());
    }
}
