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
    let specs = doc["DOCUMENTATION"]["options"]
        .as_mapping()
        .cloned()
        .unwrap_or_default();
    for (name, spec) in &specs {
        let name = name.as_str().unwrap_or_default();
        check_option::<M::Options>(name, spec).map_err(|e| format!("option {name}: {e}"))?;
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

/// One documented option against the struct: its documented default is
/// what the struct takes when the option is left out (no default: null),
/// that default has the documented type, and every documented choice is
/// accepted while another word is refused.
fn check_option<T: DeserializeOwned + serde::Serialize>(
    name: &str,
    spec: &Value,
) -> Result<(), String> {
    let parse = |value: Option<serde_json::Value>| -> Result<serde_json::Value, String> {
        let mut map = serde_json::Map::new();
        if let Some(value) = value {
            map.insert(name.to_string(), value);
        }
        let options: T = crate::options::from_value(map).map_err(|e| e.to_string())?;
        let mut all = serde_json::to_value(options).map_err(|e| e.to_string())?;
        Ok(all[name].take())
    };
    let left_out = parse(None).map_err(|e| format!("the struct needs it ({e})"))?;
    let documented = match spec.get("default") {
        Some(default) => {
            let default = serde_json::to_value(default).map_err(|e| e.to_string())?;
            let given = parse(Some(default.clone()))
                .map_err(|e| format!("the documented default {default} is refused: {e}"))?;
            if given != left_out {
                return Err(format!(
                    "documented default {default}, but left out it is {left_out}"
                ));
            }
            left_out
        }
        None if left_out.is_null() => return check_choices(spec, &parse),
        None => {
            return Err(format!(
                "no documented default, but left out it is {left_out}"
            ))
        }
    };
    let kind_ok = match spec.get("type").and_then(Value::as_str).unwrap_or("str") {
        "bool" => documented.is_boolean(),
        "str" | "path" => documented.is_string(),
        "list" => documented.is_array(),
        "int" => documented.is_i64() || documented.is_u64(),
        "dict" => documented.is_object(),
        other => return Err(format!("type {other} is not one this check knows")),
    };
    if !kind_ok {
        return Err(format!(
            "the default {documented} is not of the documented type"
        ));
    }
    check_choices(spec, &parse)
}

fn check_choices(
    spec: &Value,
    parse: &dyn Fn(Option<serde_json::Value>) -> Result<serde_json::Value, String>,
) -> Result<(), String> {
    let Some(choices) = spec.get("choices").and_then(Value::as_sequence) else {
        return Ok(());
    };
    for choice in choices {
        let choice = serde_json::to_value(choice).map_err(|e| e.to_string())?;
        parse(Some(choice.clone())).map_err(|e| format!("the choice {choice} is refused: {e}"))?;
    }
    let word = serde_json::Value::String("not-a-documented-choice".into());
    if parse(Some(word)).is_ok() {
        return Err("a word that is not among the choices is accepted".into());
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
        name: Option<String>,
        #[serde(default)]
        force: bool,
        #[serde(default)]
        mode: TinyMode,
    }

    #[derive(Default, serde::Deserialize, serde::Serialize)]
    #[serde(rename_all = "lowercase")]
    enum TinyMode {
        #[default]
        Fast,
        Safe,
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
        let good = "DOCUMENTATION: {module: tiny, options: {force: {type: bool, default: false}, name: {}, \
                    mode: {choices: [fast, safe], default: fast}}}\nEXAMPLES: x\nRETURN: {}\n";
        assert_eq!(check_sidecar::<Tiny>(good), Ok(()));
        let missing = good.replace("force: {type: bool, default: false}, ", "");
        assert_eq!(
            check_sidecar::<Tiny>(&missing),
            Err("sidecar documents [\"mode\", \"name\"], the option struct has [\"force\", \"mode\", \"name\"]".into())
        );
        let renamed = good.replace("module: tiny", "module: other");
        assert!(check_sidecar::<Tiny>(&renamed).is_err());
        for (from, to, says) in [
            (
                "default: false",
                "default: true",
                "option force: documented default true, but left out it is false",
            ),
            (
                "type: bool, ",
                "type: list, ",
                "option force: the default false is not of the documented type",
            ),
            (
                "name: {}",
                "name: {default: x}",
                "option name: documented default \"x\", but left out it is null",
            ),
            (
                "default: fast",
                "",
                "option mode: no documented default, but left out it is \"fast\"",
            ),
            (
                "[fast, safe]",
                "[fast, safe, slow]",
                "option mode: the choice \"slow\" is refused",
            ),
        ] {
            let bad = good.replace(from, to);
            let got = check_sidecar::<Tiny>(&bad);
            assert!(
                got.as_ref().is_err_and(|e| e.starts_with(says)),
                "{from} -> {to}: {got:?}"
            );
        }
    }
}
