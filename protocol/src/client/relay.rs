//! Relaying a frame as it is: what a node does when it forwards a request to the key's
//! owner (`docs/PROTOCOL.md` §9).

use tokio::sync::mpsc::UnboundedReceiver;

use super::{Client, ClientError};
use crate::wire::Frame;

impl Client {
    /// Sends `frame` on this client's connection with `hops` + 1 and `group` set to the group
    /// it was routed in, under a fresh transaction id (trace, key and payload kept); returns
    /// the channel its reply frames arrive on. The caller gives them back their own
    /// transaction id and stops at the frame without `MORE`.
    pub async fn relay(
        &self,
        frame: &Frame,
        group: u32,
    ) -> Result<(u64, UnboundedReceiver<Frame>), ClientError> {
        let conn = self.connection().await?;
        let (trans, rx) = conn
            .send(|trans, buf| {
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
            .await?;
        Ok((trans, rx))
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
