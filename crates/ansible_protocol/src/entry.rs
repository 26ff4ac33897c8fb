//! The one place that prints to stdout and exits: reads the args file,
//! drives a [`Module`], and writes the result (see the crate docs for the
//! wire format).

#![allow(clippy::print_stdout, clippy::exit)]

use std::ffi::OsString;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Mutex;

use serde_json::{json, Map, Value};

use crate::options::{from_value, option_names};
use crate::{CommandFailed, Context, Module, Response};

const MASK: &str = "********";
const NO_LOG_PLACEHOLDER: &str = "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER";

/// Runs module `M` on `host` as Ansible does: args file from `argv[1]`,
/// result on stdout, exit code 1 on failure. Never returns.
pub fn run<M: Module>(host: &M::Host) -> ! {
    panic::set_hook(Box::new(|info| {
        if let (Ok(mut at), Some(loc)) = (PANIC_AT.lock(), info.location()) {
            *at = Some(format!("{}:{}", loc.file(), loc.line()));
        }
        // Release builds abort on panic (no unwinding tables: smaller
        // binaries), so the failed result is printed here, before the abort.
        if cfg!(panic = "abort") {
            let what = payload_text(info.payload());
            println!("{}", Value::Object(failure(panic_message::<M>(&what))));
            std::process::exit(1);
        }
    }));
    let argv: Vec<OsString> = std::env::args_os().collect();
    let (result, code) = execute::<M>(&argv, host);
    // Serialising a Value cannot fail; the fallback keeps the promise of one
    // JSON object even so.
    let text = serde_json::to_string(&result).unwrap_or_else(|_| {
        r#"{"failed": true, "changed": false, "msg": "cannot encode the result"}"#.into()
    });
    println!("{text}");
    std::process::exit(code)
}

static PANIC_AT: Mutex<Option<String>> = Mutex::new(None);

/// Everything [`run`] does except printing and exiting: returns the result
/// object and the exit code. `argv` is the full argument vector. A panic in
/// the module becomes a failed result.
pub fn execute<M: Module>(argv: &[OsString], host: &M::Host) -> (Value, i32) {
    panic::catch_unwind(AssertUnwindSafe(|| execute_unguarded::<M>(argv, host))).unwrap_or_else(
        |payload| {
            let msg = panic_message::<M>(&payload_text(payload.as_ref()));
            (Value::Object(failure(msg)), 1)
        },
    )
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

fn panic_message<M: Module>(what: &str) -> String {
    let at = PANIC_AT
        .lock()
        .ok()
        .and_then(|at| at.clone())
        .unwrap_or_else(|| "unknown location".into());
    format!("internal error in module {}: {what} (at {at})", M::NAME)
}

fn execute_unguarded<M: Module>(argv: &[OsString], host: &M::Host) -> (Value, i32) {
    let raw = match read_args(argv) {
        Ok(raw) => raw,
        Err(msg) => return (Value::Object(failure(msg)), 1),
    };
    let mut options = Map::new();
    let mut internal = Map::new();
    for (key, value) in raw {
        if key.starts_with("_ansible_") {
            internal.insert(key, value);
        } else {
            options.insert(key, value);
        }
    }
    let secrets: Vec<String> = M::NO_LOG
        .iter()
        .filter_map(|name| options.get(*name))
        .filter_map(|v| match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Null => None,
            other => Some(other.to_string()),
        })
        .collect();
    let ctx = context(&internal);

    let (mut result, failed) = match outcome::<M>(options, &ctx, host) {
        Ok(result) => (Value::Object(result), false),
        Err(result) => (Value::Object(result), true),
    };
    mask(&mut result, &secrets);
    (result, i32::from(failed))
}

fn read_args(argv: &[OsString]) -> Result<Map<String, Value>, String> {
    let program = argv
        .first()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_else(|| "module".into());
    let [_, path] = argv else {
        return Err(format!(
            "expected exactly one argument, the path of a JSON arguments file \
             (this is an Ansible module; by hand: {program} ARGS.json)"
        ));
    };
    let path_shown = path.to_string_lossy();
    let text = std::fs::read(path)
        .map_err(|e| format!("cannot read the arguments file {path_shown}: {e}"))?;
    let value: Value = serde_json::from_slice(&text)
        .map_err(|e| format!("the arguments file {path_shown} is not valid JSON: {e}"))?;
    match value {
        Value::Object(map) => Ok(map),
        other => Err(format!(
            "the arguments file {path_shown} must hold a JSON object of options, not {}",
            match other {
                Value::Array(_) => "an array",
                Value::String(_) => "a string",
                Value::Number(_) => "a number",
                Value::Bool(_) => "a boolean",
                _ => "null",
            }
        )),
    }
}

fn context(internal: &Map<String, Value>) -> Context {
    let flag = |key: &str| match internal.get(key) {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => {
            matches!(s.to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on")
        }
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0) != 0,
        _ => false,
    };
    let text = |key: &str| {
        internal
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    Context {
        check_mode: flag("_ansible_check_mode"),
        diff: flag("_ansible_diff"),
        verbosity: internal
            .get("_ansible_verbosity")
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
            .map(|v| u8::try_from(v).unwrap_or(u8::MAX))
            .unwrap_or(0),
        no_log: flag("_ansible_no_log"),
        module_name: text("_ansible_module_name"),
        tmpdir: text("_ansible_tmpdir"),
        debug: flag("_ansible_debug"),
    }
}

/// The result object: `Ok` for a success, `Err` for a failure.
fn outcome<M: Module>(options: Map<String, Value>, ctx: &Context, host: &M::Host) -> Outcome {
    let names = option_names::<M::Options>();
    let mut unknown: Vec<&str> = options
        .keys()
        .map(String::as_str)
        .filter(|k| !names.contains(k))
        .collect();
    if !unknown.is_empty() {
        unknown.sort_unstable();
        let mut valid = names.clone();
        valid.sort_unstable();
        let mut result = failure(format!(
            "Unsupported parameters for ({}) module: {}. Supported parameters include: {}.",
            M::NAME,
            unknown.join(", "),
            valid.join(", ")
        ));
        result.insert("invocation".into(), invocation::<M>(Value::Object(options)));
        return Err(result);
    }
    let echoed = Value::Object(options.clone());
    let parsed: M::Options = match from_value(options) {
        Ok(parsed) => parsed,
        Err(e) => {
            let mut result = failure(format!("invalid options for {}: {e}", M::NAME));
            result.insert("invocation".into(), invocation::<M>(echoed));
            return Err(result);
        }
    };
    let args = serde_json::to_value(&parsed).unwrap_or(echoed);
    let answer = M::plan(parsed, ctx, host).and_then(|plan| {
        if ctx.check_mode {
            Ok(M::preview(plan, ctx))
        } else {
            M::apply(plan, ctx, host)
        }
    });
    let mut result = match answer {
        Ok(response) => success(response, ctx),
        Err(err) => Err(error_result(&err)),
    };
    match &mut result {
        Ok(map) | Err(map) => map.insert("invocation".into(), invocation::<M>(args)),
    };
    result
}

/// A result object, as a success or a failure.
type Outcome = Result<Map<String, Value>, Map<String, Value>>;

fn success<R: serde::Serialize>(response: Response<R>, ctx: &Context) -> Outcome {
    let mut result = match serde_json::to_value(&response) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(failure(
                "the module's return values are not an object".into(),
            ))
        }
        Err(e) => {
            return Err(failure(format!(
                "cannot encode the module's return values: {e}"
            )))
        }
    };
    result.insert("failed".into(), Value::Bool(false));
    if let (true, Some(diff)) = (ctx.diff, response.diff) {
        result.insert("diff".into(), json!(diff));
    }
    Ok(result)
}

fn error_result(err: &anyhow::Error) -> Map<String, Value> {
    let mut result = failure(format!("{err:#}"));
    result.insert("exception".into(), Value::String(format!("{err:?}")));
    if let Some(failed) = err.chain().find_map(|e| e.downcast_ref::<CommandFailed>()) {
        result.insert("cmd".into(), json!(failed.cmd));
        result.insert("rc".into(), json!(failed.rc));
        result.insert("stdout".into(), json!(failed.stdout));
        result.insert("stderr".into(), json!(failed.stderr));
    }
    result
}

fn failure(msg: String) -> Map<String, Value> {
    let mut result = Map::new();
    result.insert("failed".into(), Value::Bool(true));
    result.insert("changed".into(), Value::Bool(false));
    result.insert("msg".into(), Value::String(msg));
    result
}

fn invocation<M: Module>(mut args: Value) -> Value {
    if let Value::Object(map) = &mut args {
        for name in M::NO_LOG {
            if let Some(v) = map.get_mut(*name) {
                if !v.is_null() {
                    *v = Value::String(NO_LOG_PLACEHOLDER.into());
                }
            }
        }
    }
    json!({ "module_args": args })
}

/// Replaces every occurrence of a secret inside every string of `value`.
fn mask(value: &mut Value, secrets: &[String]) {
    if secrets.is_empty() {
        return;
    }
    match value {
        Value::String(s) => {
            for secret in secrets {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), MASK);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| mask(v, secrets)),
        Value::Object(map) => map.values_mut().for_each(|v| mask(v, secrets)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
