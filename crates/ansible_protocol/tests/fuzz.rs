//! Property tests of what a module binary reads first: the args file
//! (bytes from the controller, through [`ansible_protocol::execute`]) and
//! the option coercion of [`ansible_protocol::options::from_value`] over
//! any JSON value.
//!
//! Properties beyond "no panic": every run answers one object with a
//! boolean `failed` and exit code 1 exactly when it failed, never the
//! "internal error" a caught panic becomes; a `no_log` option's value
//! appears in no string of the result; values Ansible would accept are
//! coerced as AnsibleModule does. Memory, case counts and regressions: see
//! `crates/formats/tests/harness/mod.rs` (shared by `#[path]`).

#[path = "../../formats/tests/harness/mod.rs"]
mod harness;

use std::collections::BTreeMap;
use std::ffi::OsString;

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use ansible_protocol::options::from_value;
use ansible_protocol::{execute, Context, Module, Response};

// ---------------------------------------------------------------- a module

#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
enum State {
    Present,
    Absent,
}

/// Options of the shapes our modules declare.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct Options {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    force: bool,
    #[serde(default)]
    count: u32,
    #[serde(default)]
    offset: i16,
    #[serde(default)]
    kernels: Vec<String>,
    #[serde(default)]
    state: Option<State>,
    #[serde(default)]
    ratio: Option<f64>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default)]
    password: Option<String>,
}

/// A module that plans from its options and reports them.
struct Echo;

#[derive(Serialize)]
struct Echoed {
    options: Options,
}

impl Module for Echo {
    const NAME: &'static str = "echo";
    const NO_LOG: &'static [&'static str] = &["password"];
    type Host = ();
    type Options = Options;
    type Plan = Options;
    type Return = Echoed;

    fn plan(options: Options, _: &Context, _: &()) -> anyhow::Result<Options> {
        if options.count == 13 {
            anyhow::bail!("thirteen is refused (password {:?})", options.password);
        }
        Ok(options)
    }

    fn preview(plan: Options, _: &Context) -> Response<Echoed> {
        Response {
            changed: plan.force,
            msg: Some(format!("would echo {:?}", plan.name)),
            diff: None,
            warnings: plan.kernels.clone(),
            values: Echoed { options: plan },
        }
    }

    fn apply(plan: Options, ctx: &Context, _: &()) -> anyhow::Result<Response<Echoed>> {
        Ok(Echo::preview(plan, ctx))
    }
}

// ---------------------------------------------------------------- inputs

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        ".{0,12}".prop_map(Value::String),
        proptest::sample::select(vec![
            "yes",
            "no",
            "On",
            " 1 ",
            "0",
            "true",
            "F",
            "13",
            "-3",
            "4294967296",
            "a,b, c",
            "",
            "{\"a\": \"b\"}",
            "present",
            "absent",
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map(".{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn option_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(vec![
            "name", "force", "count", "offset", "kernels", "state", "ratio", "labels",
            "password", "_ansible_check_mode", "_ansible_diff", "_ansible_verbosity",
            "_ansible_no_log", "_ansible_module_name",
        ])
        .prop_map(str::to_string),
        1 => ".{0,10}",
    ]
}

fn args_object() -> impl Strategy<Value = Map<String, Value>> {
    btree_map(option_name(), json_value(), 0..8).prop_map(|m| m.into_iter().collect())
}

/// Runs [`Echo`] on an args file holding `bytes`.
fn run(dir: &std::path::Path, bytes: &[u8]) -> (Value, i32) {
    let path = dir.join("args.json");
    std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("write args: {e}"));
    let argv = vec![OsString::from("echo"), path.into_os_string()];
    execute::<Echo>(&argv, &())
}

/// The checks every result must pass.
fn check_result(result: &Value, code: i32) -> Result<(), TestCaseError> {
    let object = result
        .as_object()
        .ok_or_else(|| TestCaseError::fail("the result is not an object"))?;
    let failed = object.get("failed").and_then(Value::as_bool);
    prop_assert_eq!(failed, Some(code == 1), "{}", result);
    prop_assert!(code == 0 || code == 1);
    prop_assert!(
        object.get("changed").is_some_and(Value::is_boolean),
        "{}",
        result
    );
    if let Some(msg) = object.get("msg") {
        let msg = msg.as_str().unwrap_or_default();
        prop_assert!(!msg.starts_with("internal error"), "a panic: {}", msg);
    }
    Ok(())
}

/// Every string inside `value`.
fn strings(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

proptest! {
    #![proptest_config(harness::config(1500))]

    #[test]
    fn args_file_of_random_bytes(bytes in prop_oneof![
        vec(any::<u8>(), 0..200),
        "[{}\\[\\]\":,0-9a-z_ ]{0,120}".prop_map(String::into_bytes),
        (1usize..3000).prop_map(|depth| "[".repeat(depth).into_bytes()),
    ]) {
        let (result, code) = run(&harness::scratch("args_file_of_random_bytes"), &bytes);
        check_result(&result, code)?;
    }

    #[test]
    fn args_objects(args in args_object(), secret in "[A-Za-z0-9]{6,12}", with_secret in any::<bool>()) {
        let mut args = args;
        if with_secret {
            args.insert("password".into(), Value::String(secret.clone()));
            if let Some(Value::String(name)) = args.get_mut("name") {
                name.push_str(&secret);
            }
        }
        let bytes = serde_json::to_vec(&Value::Object(args.clone())).expect("encode");
        let (result, code) = run(&harness::scratch("args_objects"), &bytes);
        check_result(&result, code)?;
        if with_secret {
            let mut all = Vec::new();
            strings(&result, &mut all);
            prop_assert!(!all.iter().any(|s| s.contains(&secret)), "{}", result);
        }
        let unknown = args.keys().any(|k| !k.starts_with("_ansible_") && ![
            "name", "force", "count", "offset", "kernels", "state", "ratio", "labels", "password",
        ].contains(&k.as_str()));
        if unknown {
            prop_assert_eq!(code, 1);
            let msg = result["msg"].as_str().unwrap_or_default();
            prop_assert!(msg.starts_with("Unsupported parameters for (echo) module"), "{}", msg);
        }
    }
}

// ---------------------------------------------------------------- coercion

fn parse(options: Map<String, Value>) -> Result<Options, String> {
    from_value(options).map_err(|e| e.to_string())
}

fn single(key: &str, value: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert(key.into(), value);
    m
}

proptest! {
    #![proptest_config(harness::config(2000))]

    #[test]
    fn coercion_of_any_value(args in args_object()) {
        let options: Map<String, Value> =
            args.into_iter().filter(|(k, _)| !k.starts_with("_ansible_")).collect();
        if let Ok(parsed) = parse(options) {
            // What was accepted serialises and reads back the same.
            let again = serde_json::to_value(&parsed).expect("encode");
            if let Value::Object(map) = again {
                if parsed.ratio.is_none_or(f64::is_finite) {
                    prop_assert_eq!(parse(map).expect("its own output"), parsed);
                }
            }
        }
    }

    #[test]
    fn booleans_as_ansible_spells_them(
        word in proptest::sample::select(vec!["y", "yes", "on", "1", "true", "t", "n", "no", "off", "0", "false", "f"]),
        upper in any::<bool>(),
        pad in " {0,2}",
    ) {
        let truth = ["y", "yes", "on", "1", "true", "t"].contains(&word);
        let shown = if upper { word.to_uppercase() } else { word.to_string() };
        let parsed = parse(single("force", Value::String(format!("{pad}{shown}{pad}"))));
        prop_assert_eq!(parsed.map(|o| o.force), Ok(truth));
    }

    #[test]
    fn integers_in_range_or_refused(n in prop_oneof![any::<i64>(), -70000i64..70000], as_text in any::<bool>()) {
        let value = if as_text { Value::String(n.to_string()) } else { json!(n) };
        let count = parse(single("count", value.clone())).map(|o| o.count);
        prop_assert_eq!(count.ok(), u32::try_from(n).ok());
        let offset = parse(single("offset", value)).map(|o| o.offset);
        prop_assert_eq!(offset.ok(), i16::try_from(n).ok());
    }

    #[test]
    fn comma_separated_lists(items in vec("[a-z0-9.-]{1,8}", 1..5), spaced in any::<bool>()) {
        let sep = if spaced { " , " } else { "," };
        let parsed = parse(single("kernels", Value::String(items.join(sep))));
        prop_assert_eq!(parsed.map(|o| o.kernels), Ok(items));
    }
}

// ---------------------------------------------------------------- harness

limit_tests!();
