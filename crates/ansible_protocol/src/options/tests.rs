//! Tests of option coercion: what Ansible sends, and the errors that name the option.
use super::*;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Opts {
    name: String,
    force: bool,
    count: u32,
    kernels: Vec<String>,
    mode: Option<Mode>,
    #[serde(default)]
    ratio: Option<f64>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Fast,
    Safe,
}

fn parse(v: Value) -> Result<Opts, OptionError> {
    match v {
        Value::Object(map) => from_value(map),
        _ => Err(OptionError("test input must be an object".into())),
    }
}

#[test]
fn typed_values_pass_through() -> Result<(), OptionError> {
    let o = parse(json!({"name": "aacraid", "force": true, "count": 3,
                          "kernels": ["a", "b"], "mode": "safe"}))?;
    assert_eq!(o.kernels, ["a", "b"]);
    assert_eq!(o.mode, Some(Mode::Safe));
    Ok(())
}

#[test]
fn adhoc_strings_are_coerced() -> Result<(), OptionError> {
    for (word, want) in [
        ("yes", true),
        ("No", false),
        ("on", true),
        ("0", false),
        ("True", true),
        ("f", false),
    ] {
        let o = parse(json!({"name": 7, "force": word, "count": " 3 ",
                              "kernels": "a, b", "mode": null, "ratio": "0.5"}))?;
        assert_eq!(o.force, want, "{word}");
        assert_eq!(o.name, "7");
        assert_eq!(o.count, 3);
        assert_eq!(o.kernels, ["a", "b"]);
        assert_eq!(o.ratio, Some(0.5));
    }
    Ok(())
}

#[test]
fn errors_name_the_option() {
    let cases = [
        (
            json!({"name": "x", "force": "maybe", "count": 1, "kernels": [], "mode": null}),
            "option 'force': expected a boolean",
        ),
        (
            json!({"name": "x", "force": true, "count": "three", "kernels": [], "mode": null}),
            "option 'count': expected an integer, got string \"three\"",
        ),
        (
            json!({"name": "x", "force": true, "count": -1, "kernels": [], "mode": null}),
            "option 'count': -1 is out of range for u32",
        ),
        (
            json!({"name": ["x"], "force": true, "count": 1, "kernels": [], "mode": null}),
            "option 'name': expected a string, got a list",
        ),
        (
            json!({"name": "x", "force": true, "count": 1, "kernels": {"a": 1}, "mode": null}),
            "option 'kernels': expected a list",
        ),
        (
            json!({"name": "x", "force": true, "count": 1, "kernels": [], "mode": "slow"}),
            "option 'mode': unknown variant `slow`, expected `fast` or `safe`",
        ),
    ];
    for (input, message) in cases {
        let err = parse(input).expect_err(message);
        assert!(err.to_string().starts_with(message), "{err} / {message}");
    }
}

#[test]
fn names_come_from_the_struct() {
    assert_eq!(
        option_names::<Opts>(),
        ["name", "force", "count", "kernels", "mode", "ratio"]
    );
}
