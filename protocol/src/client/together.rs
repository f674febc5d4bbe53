//! Requests sent together: several frames in one write on the connection, so they cost
//! one round trip. A node serves the frames of a connection in the order they arrive
//! (`docs/PROTOCOL.md` §9: a batch it serves itself in order, frames it forwards to one owner
//! in order), so a read sent before a write of the same key sees the value the write
//! replaces.

use super::{Client, Result, Target};
use crate::wire::{Header, Reply, Request};

impl Client {
    /// Sends `reqs` (each with its key) in one write and collects each one's replies, in
    /// order: the outer error is the connection's, each inner one its request's. Nothing is
    /// retried.
    pub async fn call_together(
        &self,
        reqs: &[(Request, Target)],
    ) -> Result<Vec<Result<Vec<Reply>>>> {
        let conn = self.connection().await?;
        let (group, version) = (self.config.group, conn.version());
        let acting = self.config.acting.as_deref();
        let sent = conn
            .send_all(reqs.len(), |i, trans, buf| {
                let (req, key) = &reqs[i];
                let mut h = Header::request(req.command(), trans, key.id(), group);
                h.version = version;
                key.encode_request(req, &mut h, buf, acting)?;
                Ok(h)
            })
            .await?;
        let replies = sent
            .into_iter()
            .map(|(trans, rx)| self.collect(&conn, trans, rx));
        Ok(futures_util::future::join_all(replies).await)
    }
}
