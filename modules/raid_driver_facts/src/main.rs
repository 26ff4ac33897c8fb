//! The raid_driver_facts binary: all logic is in the library.
ansible_protocol::main!(
    raid_driver_facts::RaidDriverFacts,
    linux_host::Host::system()
);
