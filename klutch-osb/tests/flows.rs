//! Flow tests against the fake broker.
