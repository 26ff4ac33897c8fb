//! A module whose plan panics, to check that a panic still yields one
//! failed JSON result and exit code 1 in release builds, which abort on
//! panic (tests/system/test_build.py builds and runs it).

use ansible_protocol::{Context, Module, Response};

struct Panicking;

impl Module for Panicking {
    const NAME: &'static str = "panicking";
    type Host = ();
    type Options = std::collections::BTreeMap<String, String>;
    type Plan = ();
    type Return = ();

    fn plan(_: Self::Options, _: &Context, _: &()) -> anyhow::Result<()> {
        panic!("deliberate panic for the test")
    }

    fn preview(_: (), _: &Context) -> Response<()> {
        Response::default()
    }

    fn apply(_: (), _: &Context, _: &()) -> anyhow::Result<Response<()>> {
        Ok(Response::default())
    }
}

ansible_protocol::main!(Panicking, ());
