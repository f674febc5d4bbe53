//! Relaying a frame as it is: what a node does when it forwards a request to the key's
//! owner (`docs/PROTOCOL.md` §9).

use super::{Client, ClientError, RunReplies};
use crate::wire::Frame;

impl Client {
    /// Sends `frames` on this client's connection in one write, each with `hops` + 1 and
    /// `group` set to the group it was routed in, under a fresh transaction id (trace, key
    /// and payload kept); returns their transaction ids and reply frames ([`RunReplies`]).
    /// The caller gives the frames back their own transaction id and stops at the frame
    /// without `MORE`.
    pub async fn relay_all(&self, frames: &[(&Frame, u32)]) -> Result<RunReplies, ClientError> {
        let conn = self.connection().await?;
        conn.send_run(frames.len(), |i, trans, buf| {
            let (frame, group) = frames[i];
            let mut header = frame.header;
            header.trans = trans;
            header.hops = header.hops.saturating_add(1);
            header.group = group;
            let relayed = Frame {
                header,
                payload: frame.payload.clone(),
            };
            relayed.encode(buf)?;
            Ok(header)
        })
        .await
    }

    /// Per-request deadline.
    pub fn timeout(&self) -> std::time::Duration {
        self.config.timeout
    }

    /// Stops waiting for a relayed transaction (after a timeout).
    pub async fn forget(&self, trans: u64) {
        if let Ok(conn) = self.connection().await {
            conn.forget(trans);
        }
    }
}
