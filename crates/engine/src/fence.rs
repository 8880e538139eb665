//! The write fence of a leased replica: [`gec_aws::Fence`] (its module docs give the
//! arithmetic). The engine checks it before each phase, batch and redeploy attempt, to
//! skip what it may not write (`Skip::NotLeader`); the AWS adapter also checks it on every
//! write request it sends.

pub use gec_aws::Fence;
