//! [`Outbox`]: collects what foca asks for (sends, timers, notifications) as [`Effect`]s;
//! notifications are kept aside so the state machine reacts to them after foca returns.

use std::time::Duration;

use foca::{Notification, OwnedNotification, Runtime, Timer};

use super::message::swim_datagram;
use super::{ClusterTimer, Effect, MemberId};

/// Effects produced by one input, in order, plus foca's notifications still to handle.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    pub effects: Vec<Effect>,
    pub notifications: Vec<OwnedNotification<MemberId>>,
}

impl Outbox {
    pub fn send(&mut self, to: &str, bytes: Vec<u8>) {
        self.effects.push(Effect::Send {
            to: to.to_string(),
            bytes,
        });
    }

    pub fn schedule(&mut self, after: Duration, timer: ClusterTimer) {
        self.effects.push(Effect::Schedule { after, timer });
    }
}

impl Runtime<MemberId> for Outbox {
    fn notify(&mut self, notification: Notification<'_, MemberId>) {
        self.notifications.push(notification.to_owned());
    }

    fn send_to(&mut self, to: MemberId, data: &[u8]) {
        self.send(&to.addr, swim_datagram(data));
    }

    fn submit_after(&mut self, event: Timer<MemberId>, after: Duration) {
        self.schedule(after, ClusterTimer::Swim(event));
    }
}
