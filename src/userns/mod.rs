//! User namespaces and ids, a leaf module (it imports only `syscall` and
//! `path_lookup`): who ferry runs as (`ids`), the uid/gid maps of a new
//! user namespace (`maps`), the caller's subordinate ranges (`subids`), and
//! rootless image work in a namespace mapped over them (`mapped`).

pub mod ids;
pub mod mapped;
pub mod maps;
pub mod subids;

pub use ids::{in_user_namespace, is_rootless, mapped_ids, own_ids};
pub use mapped::{UsernsError, run_mapped};
pub use maps::{IdMapError, Maps, check_allowed, own_map};
pub use subids::{Range, SubIds, mappings, subordinate_ids};
