//! The files passing through the hub: who offered what to whom, which
//! receivers accepted, and how many bytes each may still be sent.
//!
//! The server relays a file in chunks and holds at most a window of it per
//! receiver (at most [`MAX_WINDOW`], 1 MiB): a sender may only send what
//! its receiver has acknowledged plus the window the receiver gave, and a
//! chunk beyond it ends that transfer. So a receiver that stops reading
//! stops its sender, and the server's memory stays flat however large the
//! file is. Everything here is bookkeeping without sockets: the hub routes
//! what it returns.

use std::collections::{BTreeSet, HashMap};

use crate::common::file_packet::{CancelReason, FileMsg, FilePacket, Offer, MAX_WINDOW};

/// How many offers one client may have open at once (offered and not yet
/// finished by every receiver).
pub const MAX_OPEN_OFFERS: usize = 32;

/// A frame's worth of news for one client: a FILE packet whose `peer` is
/// the client it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub to: u64,
    pub packet: FilePacket,
}

/// Why an offer was refused, as a sentence for its sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// What became of a chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Chunk {
    /// Pass it on.
    Pass,
    /// It belongs to no open transfer (one that just ended, most likely:
    /// chunks already sent arrive after a cancel); drop it.
    Stale,
    /// It breaks the rules: the transfer ends, and both sides are told.
    Broken(Vec<Route>),
}

#[derive(Debug)]
struct OpenOffer {
    name: String,
    size: u64,
    /// Offered to these and not yet answered.
    pending: BTreeSet<u64>,
    /// Accepted by these.
    legs: HashMap<u64, Leg>,
}

#[derive(Debug, Default)]
struct Leg {
    /// How many bytes the receiver lets be unacknowledged.
    window: u64,
    /// How many bytes were passed on.
    sent: u64,
    /// How many the receiver said it has.
    acked: u64,
}

/// A file that went somewhere, for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub name: String,
    pub size: u64,
}

/// Every open offer and transfer, by sender and transfer id.
#[derive(Debug, Default)]
pub struct Transfers {
    offers: HashMap<(u64, String), OpenOffer>,
}

fn packet(transfer: &str, from: u64, what: FileMsg) -> FilePacket {
    FilePacket {
        transfer: transfer.to_string(),
        peer: Some(format!("client{from}")),
        what,
    }
}

fn cancel(reason: CancelReason, message: impl Into<String>) -> FileMsg {
    FileMsg::Cancel {
        reason,
        message: Some(message.into()),
    }
}

impl Transfers {
    /// Records `sender`'s offer to `receivers` (already checked: here, and
    /// able to receive files) and returns the offer for each of them.
    pub fn offer(
        &mut self,
        sender: u64,
        transfer: &str,
        offer: &Offer,
        receivers: BTreeSet<u64>,
    ) -> Result<Vec<Route>, Refused> {
        let key = (sender, transfer.to_string());
        if self.offers.contains_key(&key) {
            return Err(Refused(format!(
                "You already offered a file with this transfer id ({transfer})."
            )));
        }
        let open = self.offers.keys().filter(|(s, _)| *s == sender).count();
        if open >= MAX_OPEN_OFFERS {
            return Err(Refused(format!(
                "You have {MAX_OPEN_OFFERS} files on offer already, as many as the server \
                 passes on at once for one person. Wait until some are taken or cancel them."
            )));
        }
        let routes = receivers
            .iter()
            .map(|&to| Route {
                to,
                packet: packet(transfer, sender, FileMsg::Offer(offer.clone())),
            })
            .collect();
        self.offers.insert(
            key,
            OpenOffer {
                name: offer.name.clone(),
                size: offer.size,
                pending: receivers,
                legs: HashMap::new(),
            },
        );
        Ok(routes)
    }

    /// A receiver accepts: its leg opens with its window (at most
    /// [`MAX_WINDOW`]), and the sender is told. An accept for nothing
    /// offered to it is dropped.
    pub fn accept(
        &mut self,
        receiver: u64,
        sender: u64,
        transfer: &str,
        window: u64,
    ) -> Vec<Route> {
        let Some(offer) = self.offers.get_mut(&(sender, transfer.to_string())) else {
            return Vec::new();
        };
        if !offer.pending.remove(&receiver) {
            return Vec::new();
        }
        let window = window.min(MAX_WINDOW);
        offer.legs.insert(
            receiver,
            Leg {
                window,
                ..Leg::default()
            },
        );
        vec![Route {
            to: sender,
            packet: packet(transfer, receiver, FileMsg::Accept { window }),
        }]
    }

    /// A chunk from `sender` for `receiver`: passed on when it continues
    /// where the last one ended and fits in the file and the window.
    pub fn chunk(
        &mut self,
        sender: u64,
        receiver: u64,
        transfer: &str,
        offset: u64,
        len: usize,
    ) -> Chunk {
        let key = (sender, transfer.to_string());
        let Some(offer) = self.offers.get_mut(&key) else {
            return Chunk::Stale;
        };
        let size = offer.size;
        let Some(leg) = offer.legs.get_mut(&receiver) else {
            return Chunk::Stale;
        };
        let end = offset.saturating_add(len as u64);
        let fault = if offset != leg.sent {
            Some("the sender's program sent the file out of order")
        } else if end > size {
            Some("the sender's program sent more than the file's announced size")
        } else if end - leg.acked > leg.window {
            Some("the sender's program sent more than the receiver had room for")
        } else {
            None
        };
        match fault {
            None => {
                leg.sent = end;
                Chunk::Pass
            }
            Some(fault) => {
                let name = offer.name.clone();
                Chunk::Broken(self.end_leg(
                    sender,
                    receiver,
                    transfer,
                    &format!("The transfer of {name} was stopped: {fault}."),
                ))
            }
        }
    }

    /// The receiver has `received` bytes: told to the sender when it is
    /// news (more than before, no more than was sent), dropped otherwise.
    pub fn ack(&mut self, receiver: u64, sender: u64, transfer: &str, received: u64) -> Vec<Route> {
        let Some(leg) = self
            .offers
            .get_mut(&(sender, transfer.to_string()))
            .and_then(|o| o.legs.get_mut(&receiver))
        else {
            return Vec::new();
        };
        if received <= leg.acked || received > leg.sent {
            return Vec::new();
        }
        leg.acked = received;
        vec![Route {
            to: sender,
            packet: packet(transfer, receiver, FileMsg::Ack { received }),
        }]
    }

    /// The sender says it sent everything: passed to the receiver.
    pub fn done(
        &mut self,
        sender: u64,
        receiver: u64,
        transfer: &str,
        sha256: [u8; 32],
    ) -> Vec<Route> {
        let open = self
            .offers
            .get(&(sender, transfer.to_string()))
            .is_some_and(|o| o.legs.contains_key(&receiver));
        if !open {
            return Vec::new();
        }
        vec![Route {
            to: receiver,
            packet: packet(transfer, sender, FileMsg::Done { sha256 }),
        }]
    }

    /// The receiver checked and saved the file: the leg ends, the sender is
    /// told; returns what was saved, for the log.
    pub fn saved(
        &mut self,
        receiver: u64,
        sender: u64,
        transfer: &str,
    ) -> Option<(Route, Finished)> {
        let key = (sender, transfer.to_string());
        let offer = self.offers.get_mut(&key)?;
        let leg = offer.legs.get(&receiver)?;
        if leg.sent != offer.size {
            return None;
        }
        offer.legs.remove(&receiver);
        let finished = Finished {
            name: offer.name.clone(),
            size: offer.size,
        };
        self.forget_if_over(&key);
        Some((
            Route {
                to: sender,
                packet: packet(transfer, receiver, FileMsg::Saved),
            },
            finished,
        ))
    }

    /// `who` gives up (declines, cancels or failed): the other side is
    /// told. A sender naming no receiver gives up on everyone it offered
    /// the file to. Returns the routes and the file's name, for the log.
    pub fn cancel(
        &mut self,
        who: u64,
        peer: Option<u64>,
        transfer: &str,
        reason: CancelReason,
        message: Option<String>,
    ) -> (Vec<Route>, Option<String>) {
        let what = FileMsg::Cancel { reason, message };
        // From the sender of the offer?
        let own = (who, transfer.to_string());
        if let Some(offer) = self.offers.get_mut(&own) {
            let name = Some(offer.name.clone());
            let receivers: Vec<u64> = match peer {
                Some(p) => {
                    let had = offer.pending.remove(&p) | offer.legs.remove(&p).is_some();
                    if had {
                        vec![p]
                    } else {
                        Vec::new()
                    }
                }
                None => {
                    let all = offer
                        .pending
                        .iter()
                        .copied()
                        .chain(offer.legs.keys().copied());
                    let all = all.collect();
                    offer.pending.clear();
                    offer.legs.clear();
                    all
                }
            };
            self.forget_if_over(&own);
            let routes = receivers
                .into_iter()
                .map(|to| Route {
                    to,
                    packet: packet(transfer, who, what.clone()),
                })
                .collect();
            return (routes, name);
        }
        // From a receiver, about the offer of `peer`.
        let Some(sender) = peer else {
            return (Vec::new(), None);
        };
        let key = (sender, transfer.to_string());
        let Some(offer) = self.offers.get_mut(&key) else {
            return (Vec::new(), None);
        };
        let had = offer.pending.remove(&who) | offer.legs.remove(&who).is_some();
        let name = offer.name.clone();
        self.forget_if_over(&key);
        if !had {
            return (Vec::new(), None);
        }
        (
            vec![Route {
                to: sender,
                packet: packet(transfer, who, what),
            }],
            Some(name),
        )
    }

    /// Client `gone` has left (`name`, for the sentences): its offers end
    /// for everyone they went to, and the senders of what it was offered or
    /// receiving are told.
    pub fn left(&mut self, gone: u64, name: &str) -> Vec<Route> {
        let mut routes = Vec::new();
        let mut over = Vec::new();
        for (key, offer) in self.offers.iter_mut() {
            let (sender, transfer) = key;
            if *sender == gone {
                let message = format!("{name} left; the transfer of {} stopped.", offer.name);
                for to in offer
                    .pending
                    .iter()
                    .copied()
                    .chain(offer.legs.keys().copied())
                {
                    routes.push(Route {
                        to,
                        packet: packet(transfer, gone, cancel(CancelReason::Failed, &message)),
                    });
                }
                over.push(key.clone());
                continue;
            }
            let had = offer.pending.remove(&gone) | offer.legs.remove(&gone).is_some();
            if had {
                routes.push(Route {
                    to: *sender,
                    packet: packet(
                        transfer,
                        gone,
                        cancel(
                            CancelReason::Failed,
                            format!("{name} left; the transfer of {} stopped.", offer.name),
                        ),
                    ),
                });
                if offer.pending.is_empty() && offer.legs.is_empty() {
                    over.push(key.clone());
                }
            }
        }
        for key in over {
            self.offers.remove(&key);
        }
        routes
    }

    /// Ends one leg for a broken rule: both sides are told why.
    fn end_leg(&mut self, sender: u64, receiver: u64, transfer: &str, why: &str) -> Vec<Route> {
        let key = (sender, transfer.to_string());
        if let Some(offer) = self.offers.get_mut(&key) {
            offer.legs.remove(&receiver);
        }
        self.forget_if_over(&key);
        vec![
            Route {
                to: receiver,
                packet: packet(transfer, sender, cancel(CancelReason::Failed, why)),
            },
            Route {
                to: sender,
                packet: packet(transfer, receiver, cancel(CancelReason::Failed, why)),
            },
        ]
    }

    /// An offer nobody is waiting on or receiving any more is forgotten.
    fn forget_if_over(&mut self, key: &(u64, String)) {
        if self
            .offers
            .get(key)
            .is_some_and(|o| o.pending.is_empty() && o.legs.is_empty())
        {
            self.offers.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Transfers {
        /// How many bytes were passed on and not yet acknowledged, over every
        /// transfer: at most what the server could be holding of files.
        fn in_flight(&self) -> u64 {
            self.offers
                .values()
                .flat_map(|o| o.legs.values())
                .map(|l| l.sent - l.acked)
                .sum()
        }
    }

    fn offer(size: u64) -> Offer {
        Offer {
            name: "a.bin".into(),
            size,
            thumbnail: None,
            room: false,
        }
    }

    fn cancelled_for(routes: &[Route]) -> Vec<u64> {
        routes
            .iter()
            .filter(|r| matches!(r.packet.what, FileMsg::Cancel { .. }))
            .map(|r| r.to)
            .collect()
    }

    #[test]
    fn a_transfer_runs_within_the_window_the_receiver_gave() {
        let mut t = Transfers::default();
        let routes = t.offer(1, "t", &offer(3000), [2].into()).unwrap();
        assert_eq!(routes.len(), 1);
        assert_eq!(routes[0].to, 2);
        assert_eq!(routes[0].packet.peer.as_deref(), Some("client1"));
        // A chunk before the accept belongs to nothing.
        assert_eq!(t.chunk(1, 2, "t", 0, 100), Chunk::Stale);
        let told = t.accept(2, 1, "t", 1000);
        assert_eq!(told[0].to, 1);
        assert_eq!(told[0].packet.what, FileMsg::Accept { window: 1000 });
        assert_eq!(t.chunk(1, 2, "t", 0, 1000), Chunk::Pass);
        assert_eq!(t.in_flight(), 1000);
        // Acks move the window; old or impossible ones are dropped.
        assert_eq!(t.ack(2, 1, "t", 600).len(), 1);
        assert!(t.ack(2, 1, "t", 600).is_empty());
        assert!(t.ack(2, 1, "t", 5000).is_empty());
        assert_eq!(t.chunk(1, 2, "t", 1000, 600), Chunk::Pass);
        assert_eq!(t.ack(2, 1, "t", 1600).len(), 1);
        assert_eq!(t.chunk(1, 2, "t", 1600, 1000), Chunk::Pass);
        assert!(t.saved(2, 1, "t").is_none(), "not all of it was sent");
        assert_eq!(t.ack(2, 1, "t", 2600).len(), 1);
        assert_eq!(t.chunk(1, 2, "t", 2600, 400), Chunk::Pass);
        assert_eq!(t.done(1, 2, "t", [0; 32]).len(), 1);
        let (route, finished) = t.saved(2, 1, "t").unwrap();
        assert_eq!(route.to, 1);
        assert_eq!(finished.size, 3000);
        assert!(t.offers.is_empty());
    }

    #[test]
    fn a_sender_that_oversteps_the_window_loses_the_transfer() {
        let mut t = Transfers::default();
        t.offer(1, "t", &offer(10 << 20), [2].into()).unwrap();
        t.accept(2, 1, "t", u64::MAX); // clamped to MAX_WINDOW
        assert_eq!(t.chunk(1, 2, "t", 0, MAX_WINDOW as usize), Chunk::Pass);
        match t.chunk(1, 2, "t", MAX_WINDOW, 1) {
            Chunk::Broken(routes) => assert_eq!(cancelled_for(&routes), vec![2, 1]),
            other => panic!("{other:?}"),
        }
        assert!(t.offers.is_empty());
    }

    #[test]
    fn chunks_out_of_order_or_past_the_size_end_the_transfer() {
        let mut t = Transfers::default();
        t.offer(1, "t", &offer(100), [2, 3].into()).unwrap();
        t.accept(2, 1, "t", 1000);
        t.accept(3, 1, "t", 1000);
        assert!(matches!(t.chunk(1, 2, "t", 50, 10), Chunk::Broken(_)));
        assert!(matches!(t.chunk(1, 3, "t", 0, 101), Chunk::Broken(_)));
    }

    #[test]
    fn declining_and_cancelling_tell_the_other_side_only() {
        let mut t = Transfers::default();
        t.offer(1, "t", &offer(100), [2, 3, 4].into()).unwrap();
        let (routes, name) = t.cancel(2, Some(1), "t", CancelReason::Declined, None);
        assert_eq!(cancelled_for(&routes), vec![1]);
        assert_eq!(name.as_deref(), Some("a.bin"));
        // Declining twice, or what was never offered, says nothing.
        assert!(t
            .cancel(2, Some(1), "t", CancelReason::Declined, None)
            .0
            .is_empty());
        assert!(t
            .cancel(9, Some(1), "t", CancelReason::Declined, None)
            .0
            .is_empty());
        t.accept(3, 1, "t", 1000);
        // The sender gives up on everyone still in it.
        let (routes, _) = t.cancel(1, None, "t", CancelReason::Cancelled, None);
        let mut told = cancelled_for(&routes);
        told.sort();
        assert_eq!(told, vec![3, 4]);
        assert!(t.offers.is_empty());
    }

    #[test]
    fn someone_leaving_ends_what_they_were_part_of() {
        let mut t = Transfers::default();
        t.offer(1, "out", &offer(100), [2, 3].into()).unwrap();
        t.offer(3, "in", &offer(100), [1].into()).unwrap();
        t.accept(1, 3, "in", 1000);
        let routes = t.left(1, "alice");
        let mut told = cancelled_for(&routes);
        told.sort();
        assert_eq!(
            told,
            vec![2, 3, 3],
            "receivers of its offer, and the sender to it"
        );
        assert!(t.offers.is_empty());
    }

    #[test]
    fn a_sender_has_a_limited_number_of_open_offers() {
        let mut t = Transfers::default();
        for i in 0..MAX_OPEN_OFFERS {
            t.offer(1, &format!("t{i}"), &offer(1), [2].into()).unwrap();
        }
        assert!(t.offer(1, "more", &offer(1), [2].into()).is_err());
        assert!(t.offer(1, "t0", &offer(1), [2].into()).is_err());
        assert!(t.offer(2, "t0", &offer(1), [1].into()).is_ok());
    }
}
