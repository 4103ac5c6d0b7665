//! Filesystem refusals on the record. cap-std refuses every path that leaves a granted directory
//! (`..`, absolute paths, symlinks pointing out) and wasmtime-wasi refuses writes under a
//! read-only grant; this wraps `descriptor.open-at`, the call every such attempt goes through,
//! so that each refusal also becomes an event of the run.
//!
//! A path with no granted directory at all (`/etc/passwd` when only `/input` is granted) never
//! reaches the host: the connector's own libc finds no directory to resolve it against.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};

use super::sandbox::ConnectorState;
use crate::boundary::events::Capability;

/// The `wasi:filesystem/types` instance wasmtime-wasi defines.
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// Replace `open-at` in `linker` with the recording wrapper.
pub fn add_to_linker(linker: &mut Linker<ConnectorState>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    linker.instance(TYPES)?.func_wrap_async(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, ConnectorState>,
         (fd, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let opened = {
                    let mut view = store.data_mut().filesystem();
                    HostDescriptor::open_at(
                        &mut view,
                        fd,
                        path_flags,
                        path.clone(),
                        open_flags,
                        flags,
                    )
                    .await
                };
                let opened = match opened {
                    Ok(d) => Ok(d),
                    Err(e) => Err(e.downcast()?),
                };
                if let Err(code @ (ErrorCode::NotPermitted | ErrorCode::Access)) = &opened {
                    let writing = flags.contains(DescriptorFlags::WRITE)
                        || open_flags.intersects(OpenFlags::CREATE | OpenFlags::TRUNCATE);
                    let reason = format!(
                        "{code:?}: the path leaves the granted directories, or asks to write{} \
                         where the grant is read-only",
                        if writing { " (it does)" } else { "" }
                    );
                    let state = store.data();
                    state.events().refused(
                        state.name(),
                        Capability::Filesystem,
                        &format!("open {path:?}{}", if writing { " for writing" } else { "" }),
                        &reason,
                    );
                }
                Ok((opened,))
            })
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
