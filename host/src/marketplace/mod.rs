//! The marketplace: signed connector packages ([`package`]) and the publisher keys that sign
//! them and that an operator trusts ([`publisher`]). See `docs/packages.md`.

pub mod package;
pub mod publisher;

pub use package::{Package, PackageError};
pub use publisher::{PublicKey, PublisherKey, TrustStore};
