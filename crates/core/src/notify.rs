//! Which changes deserve a native notification (a toast, the tray badge), honouring the
//! user's preferences, and how bursts are grouped.
//!
//! Decided when a server row is merged into the cache (catch-up or Realtime), from what the
//! cache held before:
//! - [`NoticeKind::NewChallenge`]: a challenge the cache did not know, not a draft, not the
//!   user's own;
//! - [`NoticeKind::ChallengeStatus`]: a known challenge changed status (not to or from draft),
//!   not the user's own (they made the change);
//! - [`NoticeKind::NewSubmission`]: a submission the cache did not know, to a challenge the
//!   user created, by someone else;
//! - [`NoticeKind::SubmissionDecision`]: the user's own submission was accepted or rejected.
//!
//! Never for the first catch-up of a stream (loading what exists is not news), never when
//! muted: globally, per kind, or per challenge (`notification_prefs`: scope `global` holds
//! `muted` and the per-kind switches, scope `challenge:<id>` mutes one challenge).
//!
//! Grouping: the event coalescer gathers the notices of one frame ([`group`]); notices of one
//! kind about one challenge become one with a `count` (50 new submissions to a challenge are
//! one toast), and a frame with more than [`MAX_SEPARATE`] notices folds each kind into one.

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::store::cache::{ChallengeRow, Merged, SubmissionRow};
use crate::store::StoreError;

/// More notices than this in one frame are folded per kind.
pub const MAX_SEPARATE: usize = 3;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    NewChallenge,
    ChallengeStatus,
    NewSubmission,
    SubmissionDecision,
}

/// One notification for the shell to show. `challenge_id` is what a click opens (`None` for a
/// folded group spanning several challenges).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Notice {
    pub kind: NoticeKind,
    pub challenge_id: Option<Uuid>,
    /// The challenge's title (or the submission's, for a decision).
    pub title: String,
    /// The new status, for status changes and decisions.
    pub status: Option<String>,
    /// How many changes this notice stands for.
    pub count: u32,
}

/// The user's notification preferences.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "specta", derive(specta::Type))]
pub struct Prefs {
    /// Nothing at all.
    pub muted: bool,
    /// Per-kind switches; a kind not listed is on.
    #[serde(default)]
    pub kinds: BTreeMap<NoticeKind, bool>,
}

impl Prefs {
    pub fn allows(&self, kind: NoticeKind) -> bool {
        !self.muted && self.kinds.get(&kind).copied().unwrap_or(true)
    }
}

pub fn prefs(conn: &Connection) -> Result<Prefs, StoreError> {
    let row: Option<(bool, String)> = conn
        .prepare_cached("SELECT muted, kinds FROM notification_prefs WHERE scope = 'global'")?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        None => Prefs::default(),
        Some((muted, kinds)) => Prefs { muted, kinds: serde_json::from_str(&kinds)? },
    })
}

pub fn set_prefs(conn: &Connection, prefs: &Prefs) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO notification_prefs (scope, muted, kinds) VALUES ('global', ?1, ?2)
         ON CONFLICT (scope) DO UPDATE SET muted = excluded.muted, kinds = excluded.kinds",
    )?
    .execute(params![prefs.muted, serde_json::to_string(&prefs.kinds)?])?;
    Ok(())
}

pub fn challenge_muted(conn: &Connection, challenge: Uuid) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT muted FROM notification_prefs WHERE scope = ?1")?
        .query_row([format!("challenge:{challenge}")], |r| r.get::<_, bool>(0))
        .optional()?
        .unwrap_or(false))
}

pub fn mute_challenge(conn: &Connection, challenge: Uuid, muted: bool) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO notification_prefs (scope, muted) VALUES (?1, ?2)
         ON CONFLICT (scope) DO UPDATE SET muted = excluded.muted",
    )?
    .execute(params![format!("challenge:{challenge}"), muted])?;
    Ok(())
}

fn allowed(conn: &Connection, kind: NoticeKind, challenge: Uuid) -> Result<bool, StoreError> {
    Ok(prefs(conn)?.allows(kind) && !challenge_muted(conn, challenge)?)
}

/// The notice for a merged challenge, if it deserves one. `news`: false during a stream's
/// first catch-up.
pub fn for_challenge(
    conn: &Connection,
    me: Uuid,
    news: bool,
    merged: &Merged,
    c: &ChallengeRow,
) -> Result<Option<Notice>, StoreError> {
    if !news || c.created_by == me || c.status == "draft" {
        return Ok(None);
    }
    let kind = match merged {
        Merged::Inserted => NoticeKind::NewChallenge,
        Merged::Updated { old_status } if *old_status != c.status && old_status != "draft" => {
            NoticeKind::ChallengeStatus
        }
        // Published from a draft: new to everyone but its creator.
        Merged::Updated { old_status } if old_status == "draft" => NoticeKind::NewChallenge,
        _ => return Ok(None),
    };
    if !allowed(conn, kind, c.id)? {
        return Ok(None);
    }
    let status = (kind == NoticeKind::ChallengeStatus).then(|| c.status.clone());
    Ok(Some(Notice { kind, challenge_id: Some(c.id), title: c.title.clone(), status, count: 1 }))
}

/// The notice for a merged submission, if it deserves one.
pub fn for_submission(
    conn: &Connection,
    me: Uuid,
    news: bool,
    merged: &Merged,
    s: &SubmissionRow,
) -> Result<Option<Notice>, StoreError> {
    if !news {
        return Ok(None);
    }
    let challenge: Option<(String, String)> = conn
        .prepare_cached("SELECT title, created_by FROM challenges WHERE id = ?1")?
        .query_row([s.challenge_id.to_string()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let (challenge_title, host) = challenge.unwrap_or_default();
    let notice = match merged {
        Merged::Inserted if s.user_id != me && host == me.to_string() => Notice {
            kind: NoticeKind::NewSubmission,
            challenge_id: Some(s.challenge_id),
            title: challenge_title,
            status: None,
            count: 1,
        },
        Merged::Updated { old_status } if s.user_id == me && *old_status != s.status && s.status != "submitted" => {
            Notice {
                kind: NoticeKind::SubmissionDecision,
                challenge_id: Some(s.challenge_id),
                title: s.title.clone(),
                status: Some(s.status.clone()),
                count: 1,
            }
        }
        _ => return Ok(None),
    };
    if !allowed(conn, notice.kind, s.challenge_id)? {
        return Ok(None);
    }
    Ok(Some(notice))
}

/// Groups the notices of one frame (see the module doc).
pub fn group(notices: Vec<Notice>) -> Vec<Notice> {
    let mut by_key: BTreeMap<(NoticeKind, Option<Uuid>, Option<String>), Notice> = BTreeMap::new();
    for n in notices {
        let key = (n.kind, n.challenge_id, n.status.clone());
        match by_key.get_mut(&key) {
            Some(g) => g.count += n.count,
            None => {
                by_key.insert(key, n);
            }
        }
    }
    let grouped: Vec<Notice> = by_key.into_values().collect();
    if grouped.len() <= MAX_SEPARATE {
        return grouped;
    }
    let mut by_kind: BTreeMap<NoticeKind, Notice> = BTreeMap::new();
    for n in grouped {
        match by_kind.get_mut(&n.kind) {
            Some(g) => {
                g.count += n.count;
                if g.challenge_id != n.challenge_id {
                    g.challenge_id = None;
                }
                if g.status != n.status {
                    g.status = None;
                }
            }
            None => {
                by_kind.insert(n.kind, n);
            }
        }
    }
    by_kind.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn() -> Connection {
        let mut c = Connection::open_in_memory().expect("db");
        crate::store::migrate_for_tests(&mut c);
        c
    }

    fn challenge(created_by: Uuid, status: &str) -> ChallengeRow {
        ChallengeRow {
            id: Uuid::now_v7(),
            title: "Water".into(),
            description: String::new(),
            status: status.into(),
            deadline: None,
            created_by,
            created_at: "2026-01-01T00:00:00.000000+00:00".into(),
            updated_at: "2026-01-01T00:00:00.000000+00:00".into(),
        }
    }

    fn submission(challenge: Uuid, user: Uuid, status: &str) -> SubmissionRow {
        SubmissionRow {
            id: Uuid::now_v7(),
            challenge_id: challenge,
            user_id: user,
            title: "Idea".into(),
            content: String::new(),
            status: status.into(),
            created_at: "2026-01-01T00:00:00.000000+00:00".into(),
            updated_at: "2026-01-01T00:00:00.000000+00:00".into(),
        }
    }

    #[test]
    fn new_and_changed_challenges_notify_others_but_not_their_creator_nor_a_first_load() {
        let c = conn();
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let open = challenge(other, "open");
        let n = for_challenge(&c, me, true, &Merged::Inserted, &open).expect("decide").expect("a new challenge");
        assert_eq!((n.kind, n.challenge_id), (NoticeKind::NewChallenge, Some(open.id)));
        assert_eq!(for_challenge(&c, me, false, &Merged::Inserted, &open).expect("decide"), None, "first load");
        assert_eq!(
            for_challenge(&c, me, true, &Merged::Inserted, &challenge(me, "open")).expect("decide"),
            None,
            "mine"
        );
        assert_eq!(for_challenge(&c, me, true, &Merged::Inserted, &challenge(other, "draft")).expect("d"), None);
        let mut judging = open.clone();
        judging.status = "judging".into();
        let n = for_challenge(&c, me, true, &Merged::Updated { old_status: "open".into() }, &judging)
            .expect("decide")
            .expect("status change");
        assert_eq!((n.kind, n.status.as_deref()), (NoticeKind::ChallengeStatus, Some("judging")));
        let n = for_challenge(&c, me, true, &Merged::Updated { old_status: "draft".into() }, &open)
            .expect("decide")
            .expect("published");
        assert_eq!(n.kind, NoticeKind::NewChallenge);
        assert_eq!(
            for_challenge(&c, me, true, &Merged::Updated { old_status: "open".into() }, &open).expect("decide"),
            None,
            "a title edit is not news"
        );
    }

    #[test]
    fn submissions_notify_the_challenge_creator_and_decisions_notify_the_submitter() {
        let c = conn();
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let mine = challenge(me, "open");
        crate::store::cache::put_challenge(&c, &mine).expect("cache challenge");
        let to_mine = submission(mine.id, other, "submitted");
        let n = for_submission(&c, me, true, &Merged::Inserted, &to_mine).expect("decide").expect("to my challenge");
        assert_eq!((n.kind, n.title.as_str()), (NoticeKind::NewSubmission, "Water"));
        let by_me = submission(mine.id, me, "submitted");
        assert_eq!(for_submission(&c, me, true, &Merged::Inserted, &by_me).expect("decide"), None, "my own");
        let theirs = challenge(other, "open");
        crate::store::cache::put_challenge(&c, &theirs).expect("cache challenge");
        let accepted = submission(theirs.id, me, "accepted");
        let n = for_submission(&c, me, true, &Merged::Updated { old_status: "submitted".into() }, &accepted)
            .expect("decide")
            .expect("decision on mine");
        assert_eq!((n.kind, n.status.as_deref()), (NoticeKind::SubmissionDecision, Some("accepted")));
    }

    #[test]
    fn mutes_global_per_kind_and_per_challenge_silence_notices() {
        let c = conn();
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let open = challenge(other, "open");
        mute_challenge(&c, open.id, true).expect("mute");
        assert_eq!(for_challenge(&c, me, true, &Merged::Inserted, &open).expect("decide"), None, "challenge muted");
        mute_challenge(&c, open.id, false).expect("unmute");
        let kinds = BTreeMap::from([(NoticeKind::NewChallenge, false)]);
        set_prefs(&c, &Prefs { muted: false, kinds }).expect("prefs");
        assert_eq!(for_challenge(&c, me, true, &Merged::Inserted, &open).expect("decide"), None, "kind off");
        set_prefs(&c, &Prefs::default()).expect("prefs");
        assert!(for_challenge(&c, me, true, &Merged::Inserted, &open).expect("decide").is_some());
        set_prefs(&c, &Prefs { muted: true, kinds: BTreeMap::new() }).expect("prefs");
        assert_eq!(for_challenge(&c, me, true, &Merged::Inserted, &open).expect("decide"), None, "all muted");
    }

    #[test]
    fn bursts_group_per_challenge_and_fold_per_kind_beyond_three() {
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let n = |kind, challenge_id| Notice { kind, challenge_id, title: "t".into(), status: None, count: 1 };
        let fifty: Vec<Notice> = (0..50).map(|_| n(NoticeKind::NewSubmission, Some(a))).collect();
        assert_eq!(group(fifty), vec![Notice { count: 50, ..n(NoticeKind::NewSubmission, Some(a)) }]);
        let mixed = vec![
            n(NoticeKind::NewChallenge, Some(Uuid::now_v7())),
            n(NoticeKind::NewChallenge, Some(Uuid::now_v7())),
            n(NoticeKind::NewChallenge, Some(Uuid::now_v7())),
            n(NoticeKind::NewChallenge, Some(Uuid::now_v7())),
            n(NoticeKind::NewSubmission, Some(b)),
        ];
        let g = group(mixed);
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!((g[0].kind, g[0].count, g[0].challenge_id), (NoticeKind::NewChallenge, 4, None));
        assert_eq!((g[1].kind, g[1].count, g[1].challenge_id), (NoticeKind::NewSubmission, 1, Some(b)));
    }
}
