//! The marketplace: signed connector packages ([`package`]), the publisher keys that sign them
//! and that an operator trusts ([`publisher`]), the static index that lists them ([`index`]),
//! and installing from it with capability review ([`install`]); Airbyte declarative manifests
//! imported as packages ([`airbyte`]). See `docs/packages.md` and `docs/airbyte.md`.

pub mod airbyte;
pub mod fetch;
pub mod index;
pub mod install;
pub mod package;
pub mod publisher;

pub use index::{Index, IndexError, Location};
pub use install::{InstallError, Installer, Plan, Request};
pub use package::{Package, PackageError};
pub use publisher::{PublicKey, PublisherKey, TrustStore};
