//! How many connections may be open: in all, and per peer address.
//!
//! Over the per-peer cap a new connection is closed as soon as it is
//! accepted. At the total cap, the new connection takes the place of the
//! connection that has waited longest for a request head: a slow-loris
//! connection holds its place only until someone else needs it, so a flood
//! of them from many addresses cannot lock honest clients out, while a
//! request being answered is never cut off. Only when every connection is
//! busy answering is a new one refused. Either way the process keeps file
//! descriptors for its own work (database connections, key-ring reloads,
//! mail files).

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
};

use ipnet::IpNet;
use tokio::{sync::Notify, time::Instant};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `LATCHKEY_MAX_CONNECTIONS` are open, every one answering a request.
    Total,
    /// `LATCHKEY_MAX_CONNECTIONS_PER_IP` are open from this peer.
    PerPeer,
}

/// How many connections may be closing after giving way before accepting pauses.
const MAX_CLOSING: usize = 8;

/// One connection's state, shared by its task and the caps.
pub struct Activity {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
    evicted: AtomicBool,
    evict: Notify,
}

impl Activity {
    fn new() -> Self {
        Self {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        }
    }

    /// A request head has arrived; it is in flight until the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(self.clone())
    }

    /// Since when the connection has waited for a request head; `None`
    /// while it is answering one.
    pub fn waiting_since(&self) -> Option<Instant> {
        let since = *self.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        (self.in_flight.load(Ordering::Acquire) == 0).then_some(since)
    }

    /// Completes when another connection has taken this one's place.
    pub async fn evicted(&self) {
        self.evict.notified().await;
    }
}

/// A request being answered.
pub struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let mut since = self.0.idle_since.lock().unwrap_or_else(|e| e.into_inner());
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            *since = Instant::now();
        }
    }
}

#[derive(Default)]
struct Open {
    total: usize,
    /// Connections told to give way that have not closed yet: their file
    /// descriptors are still open.
    closing: usize,
    per_peer: HashMap<IpAddr, usize>,
    connections: HashMap<u64, Arc<Activity>>,
    next_id: u64,
}

pub struct ConnectionCaps {
    max_total: usize,
    max_per_peer: usize,
    open: Arc<Mutex<Open>>,
    /// Woken whenever a connection that gave way has closed.
    closed: Arc<Notify>,
    /// Proxies carry many clients' connections: only the total applies to them.
    trusted: Vec<IpNet>,
}

/// Held for as long as the connection is open.
pub struct Slot {
    id: u64,
    peer: Option<IpAddr>,
    pub activity: Arc<Activity>,
    open: Arc<Mutex<Open>>,
    closed: Arc<Notify>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.connections.remove(&self.id);
        // An evicted connection's place was handed to its successor.
        if self.activity.evicted.load(Ordering::Acquire) {
            open.closing -= 1;
            self.closed.notify_waiters();
        } else {
            open.total -= 1;
        }
        if let Some(peer) = self.peer
            && let Some(n) = open.per_peer.get_mut(&peer)
        {
            *n -= 1;
            if *n == 0 {
                open.per_peer.remove(&peer);
            }
        }
    }
}

impl ConnectionCaps {
    pub fn new(max_total: usize, max_per_peer: usize, trusted: Vec<IpNet>) -> Self {
        Self { max_total, max_per_peer, open: Arc::default(), closed: Arc::default(), trusted }
    }

    /// Waits while more than a few connections that gave way are still
    /// closing, so that accepting (each accept opens a descriptor) never
    /// runs ahead of closing under a flood.
    pub async fn wait_for_room(&self) {
        loop {
            let closed = self.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            if self.open.lock().unwrap_or_else(|e| e.into_inner()).closing < MAX_CLOSING {
                return;
            }
            closed.await;
        }
    }

    /// A slot for a new connection from `peer`, if the caps leave room or a
    /// connection still waiting for its request head can give up its place.
    pub fn admit(&self, peer: IpAddr) -> Result<Slot, Refused> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let counted = !self.trusted.iter().any(|net| net.contains(&peer));
        if counted && open.per_peer.get(&peer).copied().unwrap_or(0) >= self.max_per_peer {
            return Err(Refused::PerPeer);
        }
        if open.total >= self.max_total {
            let oldest = open
                .connections
                .values()
                .filter(|a| !a.evicted.load(Ordering::Acquire))
                .filter_map(|a| a.waiting_since().map(|since| (since, a)))
                .min_by_key(|(since, _)| *since)
                .map(|(_, a)| a.clone())
                .ok_or(Refused::Total)?;
            oldest.evicted.store(true, Ordering::Release);
            oldest.evict.notify_one();
            open.closing += 1;
        } else {
            open.total += 1;
        }
        if counted {
            *open.per_peer.entry(peer).or_insert(0) += 1;
        }
        let id = open.next_id;
        open.next_id += 1;
        let activity = Arc::new(Activity::new());
        open.connections.insert(id, activity.clone());
        Ok(Slot { id, peer: counted.then_some(peer), activity, open: self.open.clone(), closed: self.closed.clone() })
    }
}

/// Raises the soft limit on open files to the hard limit, and returns how
/// many connections `wanted` leaves room for under it, keeping `reserve`
/// descriptors for everything else the process opens.
pub fn fit_to_file_limit(wanted: usize, reserve: usize) -> usize {
    #[cfg(unix)]
    // SAFETY: getrlimit/setrlimit read and set this process's own limit.
    unsafe {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            if limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit.rlim_cur = limit.rlim_max;
                }
            }
            let room = usize::try_from(limit.rlim_cur).unwrap_or(usize::MAX).saturating_sub(reserve).max(1);
            return wanted.min(room);
        }
    }
    wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn each_peer_has_its_own_share() {
        let caps = ConnectionCaps::new(10, 2, vec!["10.0.0.0/8".parse().unwrap()]);
        let a1 = caps.admit(ip("192.0.2.1")).unwrap();
        let _a2 = caps.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(caps.admit(ip("192.0.2.1")).err(), Some(Refused::PerPeer));
        for _ in 0..3 {
            std::mem::forget(caps.admit(ip("10.0.0.1")).unwrap()); // a proxy: no per-peer cap
        }
        drop(a1);
        assert!(caps.admit(ip("192.0.2.1")).is_ok(), "a closed connection frees its place");
    }

    #[tokio::test]
    async fn at_the_total_the_longest_waiting_connection_gives_way_and_busy_ones_never_do() {
        let caps = ConnectionCaps::new(2, 10, vec![]);
        let slow = caps.admit(ip("192.0.2.1")).unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let busy = caps.admit(ip("192.0.2.2")).unwrap();
        let _answering = busy.activity.begin();
        let newcomer = caps.admit(ip("192.0.2.3")).expect("the slow connection gives way");
        assert!(slow.activity.evicted.load(Ordering::Acquire));
        assert!(!busy.activity.evicted.load(Ordering::Acquire));
        drop(slow); // its place went to the newcomer: the total stays at 2
        let _answering_too = newcomer.activity.begin();
        assert_eq!(caps.admit(ip("192.0.2.4")).err(), Some(Refused::Total), "every connection is answering");
    }
}
