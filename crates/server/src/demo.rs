//! Demo data for `--demo`: three accounts (password [`DEMO_PASSWORD`]) and a small, lived-in
//! platform around them — two public channels with a few days of mixed Arabic/English history
//! (replies, an edited message, reactions, unread messages for Layla), a direct conversation,
//! three challenges in different stages with submissions, a shared document, and the activity
//! feed the analytics view draws.
//!
//! Seeded **once per data dir**: if the first demo account already exists, nothing is written
//! (a second start with `--demo` adds and changes nothing). Everything is written in one
//! transaction, so a failed seed leaves no half-seeded database behind and is retried on the
//! next start. Accounts are created through [`crate::auth::account`], the same code signup
//! uses; their passwords are hashed before the write lock is taken. Times are relative to the
//! moment of seeding, so the history always looks recent on a fresh data dir.
//!
//! The document is seeded both as its plain-text `content` (for web clients and search) and as
//! one yrs v1 update in `document_updates` holding the same blocks as rich text in the
//! `Y.XmlFragment` named [`DOCUMENT_ROOT`], shaped as y-prosemirror stores Tiptap's StarterKit
//! nodes (`heading` with a `level`, `paragraph`, `bulletList` › `listItem` › `paragraph`), so the
//! editor shows it and edits merge with it; every CRDT client starts from that one history
//! instead of each inserting the text itself (which would duplicate it on merge). `content` is
//! the engine's plain-text rendering of it (one line per block), and a test holds the two equal.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, OptionalExtension, Transaction};
use serde_json::{json, Map};

use crate::auth::account::{HashedAccount, NewAccount};
use crate::auth::{AuthConfig, AuthError};
use crate::db::{Db, DbError};
use crate::schema::format_ts;

/// The root of a document's yrs `Doc` that the desktop editor binds: the `Y.XmlFragment` Tiptap's
/// Collaboration extension (y-prosemirror) uses by default.
pub const DOCUMENT_ROOT: &str = "default";

/// The password of every demo account.
pub const DEMO_PASSWORD: &str = "ruwad-demo";

/// `(email, display name, locale)` of the demo accounts.
pub const ACCOUNTS: [(&str, &str, &str); 3] = [
    ("layla@demo.ruwad.app", "ليلى حسن", "ar"),
    ("omar@demo.ruwad.app", "عمر خالد", "ar"),
    ("sara@demo.ruwad.app", "سارة يوسف", "en"),
];

const LAYLA: usize = 0;
const OMAR: usize = 1;
const SARA: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("demo account: {0}")]
    Account(#[from] AuthError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<rusqlite::Error> for DemoError {
    fn from(e: rusqlite::Error) -> DemoError {
        DemoError::Db(DbError::Sqlite(e))
    }
}

/// Seeds the demo data unless this data dir already has it. Blocking: call it on a blocking
/// thread.
pub fn seed(db: &Db) -> Result<(), DemoError> {
    if db.read_blocking(already_seeded)? {
        tracing::info!("demo data already present; not seeding again");
        return Ok(());
    }
    let accounts = ACCOUNTS
        .iter()
        .map(|(email, name, locale)| {
            let mut meta = Map::new();
            meta.insert("display_name".into(), json!(name));
            meta.insert("locale".into(), json!(locale));
            NewAccount::new(email, DEMO_PASSWORD, meta, AuthConfig::default().min_password_length)?.hash()
        })
        .collect::<Result<Vec<HashedAccount>, AuthError>>()?;
    let seeded = db.write_blocking(|tx| -> Result<bool, DemoError> {
        // Checked again under the write lock: two servers starting on one dir seed once.
        if already_seeded(tx)? {
            return Ok(false);
        }
        Seed::new(tx, Utc::now()).all(&accounts)?;
        Ok(true)
    })?;
    if seeded {
        tracing::info!(accounts = ACCOUNTS.len(), "demo data seeded (password {DEMO_PASSWORD:?})");
    }
    Ok(())
}

fn already_seeded(conn: &rusqlite::Connection) -> Result<bool, DbError> {
    Ok(conn.query_row("SELECT 1 FROM auth_users WHERE email = ?1", [ACCOUNTS[0].0], |_| Ok(())).optional()?.is_some())
}

/// A chat message of the script: author, hours before seeding, text, the index of the message
/// it replies to, and whether it was edited (a few minutes after it was sent).
struct Line(usize, f64, &'static str, Option<usize>, bool);

const GENERAL: &[Line] = &[
    Line(LAYLA, 70.0, "أهلاً بالجميع في رواد! هذه القناة العامة للفريق 👋", None, false),
    Line(OMAR, 69.9, "أهلاً ليلى، سعيد بالانضمام", None, false),
    Line(SARA, 69.5, "Hi all! Happy to be here. I'll mostly write in English, hope that's fine", None, false),
    Line(LAYLA, 69.4, "Of course, both languages are welcome here", Some(2), false),
    Line(OMAR, 68.0, "هل موعد الاجتماع الأسبوعي ما زال يوم الأحد؟", None, false),
    Line(LAYLA, 67.8, "نعم، الأحد الساعة العاشرة صباحاً", None, false),
    Line(SARA, 50.0, "Reminder: the smart irrigation challenge is open for submissions", None, false),
    Line(OMAR, 49.5, "شكراً على التذكير، أعمل على المقترح الآن", None, false),
    Line(LAYLA, 48.0, "Good morning everyone ☀️", None, false),
    Line(SARA, 47.5, "صباح النور", None, false),
    Line(OMAR, 47.0, "Has anyone tried the new document editor? It works offline too.", None, false),
    Line(LAYLA, 46.8, "جربته أمس، التعديل بدون اتصال ممتاز ثم يتزامن تلقائياً", None, false),
    Line(SARA, 46.0, "Nice, I'll use it for the judging notes", None, false),
    Line(OMAR, 30.0, "نشرت مسودة الحل في مستند الفريق، أرجو المراجعة", None, false),
    Line(LAYLA, 29.5, "سأراجعها اليوم إن شاء الله", None, false),
    Line(SARA, 29.0, "Left a few comments on the budget section", None, false),
    Line(OMAR, 28.7, "Thanks Sara, fixed them all", Some(15), false),
    Line(LAYLA, 26.0, "انتقل تحدي الطاقة الشمسية إلى مرحلة التحكيم 🎉", None, false),
    Line(SARA, 25.5, "Great, I'm on the judging panel for that one", None, false),
    Line(OMAR, 8.0, "مرحباً، هل يوجد تسجيل لجلسة الأمس؟", None, false),
    Line(LAYLA, 7.8, "نعم، الرابط في قناة الأفكار", Some(19), false),
    Line(SARA, 5.0, "Quick poll: should we move the weekly sync to 11:00?", None, false),
    Line(OMAR, 4.9, "موافق 👍", None, false),
    Line(LAYLA, 4.5, "موافقة، سأحدّث الدعوة للساعة الحادية عشرة", None, true),
    Line(SARA, 1.0, "Thanks! See you all on Sunday", None, false),
    Line(OMAR, 0.5, "بالتوفيق للجميع في التحديات 🚀", None, false),
];

const IDEAS: &[Line] = &[
    Line(SARA, 60.0, "Idea: mentorship matching between experienced members and newcomers", None, false),
    Line(LAYLA, 59.8, "فكرة رائعة! يمكن ربطها بالتحديات المفتوحة", None, false),
    Line(OMAR, 59.0, "ممكن نستخدم الاهتمامات في الملف الشخصي للمطابقة", None, false),
    Line(SARA, 58.5, "Exactly. Start simple: tags + availability", None, false),
    Line(LAYLA, 40.0, "اقتراح: لوحة تحليلات مباشرة تعرض عدد المشاركات في كل تحدٍّ", None, false),
    Line(OMAR, 39.5, "I can prototype that with the live metrics endpoint", Some(4), false),
    Line(SARA, 39.0, "Make sure it works right-to-left too 🙂", None, false),
    Line(OMAR, 38.9, "أكيد، التصميم كله بخصائص CSS المنطقية", None, false),
    Line(LAYLA, 36.0, "What about an offline-first mobile app later?", None, false),
    Line(SARA, 35.5, "Let's finish desktop first, then evaluate", None, false),
    Line(OMAR, 22.0, "فكرة: تحدٍّ شهري لطلاب الجامعات", None, false),
    Line(LAYLA, 21.7, "نحتاج شريكاً أكاديمياً، سأتواصل مع مكتب الابتكار في إحدى الجامعات", None, true),
    Line(SARA, 21.0, "I know someone at a university innovation office, I'll introduce you", Some(11), false),
    Line(LAYLA, 20.9, "شكراً سارة! 🙏", None, false),
    Line(OMAR, 12.0, "تسجيل جلسة العصف الذهني موجود في المستند المشترك", None, false),
    Line(SARA, 11.0, "Idea: badges for first submission, first win, top reviewer", None, false),
    Line(LAYLA, 10.5, "الشارات فكرة جميلة للتحفيز", None, false),
    Line(OMAR, 10.0, "We could show them on the profile card", None, false),
    Line(SARA, 3.0, "I wrote the badges list down, will share it on Sunday", None, false),
    Line(LAYLA, 2.5, "ممتاز، سأضيف شارة للمحكّمين أيضاً", None, false),
    Line(OMAR, 2.0, "+1 🏅", None, false),
    Line(SARA, 0.3, "Let's discuss it at Sunday's sync", None, false),
];

const DIRECT: &[Line] = &[
    Line(LAYLA, 27.0, "عمر، هل أنهيت ملخص الميزانية؟", None, false),
    Line(OMAR, 26.8, "تقريباً، سأرسله خلال ساعة", None, false),
    Line(OMAR, 25.5, "أضفته إلى مستند الفريق", None, false),
    Line(LAYLA, 25.0, "Perfect, thank you!", None, false),
    Line(OMAR, 24.9, "العفو 🙏", None, false),
];

/// `(message index, who, emoji)`.
const GENERAL_REACTIONS: &[(usize, usize, &str)] = &[
    (0, OMAR, "👋"),
    (0, SARA, "👋"),
    (8, OMAR, "☀️"),
    (17, OMAR, "🎉"),
    (17, SARA, "🎉"),
    (21, LAYLA, "👍"),
    (21, OMAR, "👍"),
    (25, LAYLA, "🚀"),
];
const IDEAS_REACTIONS: &[(usize, usize, &str)] =
    &[(0, LAYLA, "💡"), (0, OMAR, "💡"), (4, SARA, "👍"), (15, LAYLA, "🏅"), (15, OMAR, "🏅"), (20, SARA, "😄")];
const DIRECT_REACTIONS: &[(usize, usize, &str)] = &[(3, OMAR, "❤️")];

/// The shared document, block by block, in the shape Tiptap's StarterKit gives it.
const DOCUMENT: &[Block] = &[
    Block::Heading(1, "خطة فريق رواد — تحدي الري الذكي"),
    Block::Paragraph("Ruwād team plan — smart irrigation challenge"),
    Block::Heading(2, "١. الفكرة"),
    Block::Paragraph("حساسات رطوبة منخفضة التكلفة تتصل بتطبيق يرسل تنبيهات الري للمزارعين."),
    Block::Paragraph("Low-cost soil-moisture sensors that tell farmers when to irrigate."),
    Block::Heading(2, "٢. الميزانية"),
    Block::Bullets(&["الحساسات: ١٢٠٠ ريال", "الاستضافة: ٣٠٠ ريال", "Field test: two farms, four weeks"]),
    Block::Heading(2, "٣. المهام"),
    Block::Bullets(&[
        "ليلى: التنسيق مع المزارع",
        "عمر: النموذج الأولي للتطبيق",
        "Sara: judging notes and the final pitch",
    ]),
];

/// A top-level block of the demo document: a ProseMirror node of Tiptap's StarterKit schema.
enum Block {
    /// `heading` with its `level` attribute.
    Heading(i64, &'static str),
    Paragraph(&'static str),
    /// `bulletList` of `listItem`s, each holding one `paragraph`.
    Bullets(&'static [&'static str]),
}

impl Block {
    /// The block's lines in the plain-text rendering (one per paragraph, as the engine renders
    /// `collaborative_documents.content`: one line per block, formatting dropped).
    fn lines(&self) -> Vec<&'static str> {
        match self {
            Block::Heading(_, text) | Block::Paragraph(text) => vec![text],
            Block::Bullets(items) => items.to_vec(),
        }
    }
}

struct Seed<'a> {
    tx: &'a Transaction<'a>,
    now: DateTime<Utc>,
    users: Vec<String>,
    /// `(when, user index, kind, ref id)`, inserted in time order at the end.
    activities: Vec<(DateTime<Utc>, usize, &'static str, Option<String>)>,
}

impl<'a> Seed<'a> {
    fn new(tx: &'a Transaction<'a>, now: DateTime<Utc>) -> Seed<'a> {
        Seed { tx, now, users: Vec::new(), activities: Vec::new() }
    }

    fn ago(&self, hours: f64) -> DateTime<Utc> {
        self.now - Duration::milliseconds((hours * 3_600_000.0) as i64)
    }

    fn all(&mut self, accounts: &[HashedAccount]) -> Result<(), DemoError> {
        // Accounts and profiles exist from before the oldest challenge.
        let joined = format_ts(self.ago(24.0 * 40.0));
        for account in accounts {
            let user = account.insert(self.tx, &joined)?;
            self.users.push(user.id);
        }
        let irrigation = self.challenges()?;
        self.rooms()?;
        self.document(&irrigation)?;
        for (user, hours) in [(LAYLA, 70.5), (OMAR, 70.0), (SARA, 69.6), (LAYLA, 48.1), (OMAR, 47.2), (SARA, 46.1)] {
            self.activity(self.ago(hours), user, "signed_in", None);
        }
        for (user, hours) in [(LAYLA, 26.1), (SARA, 25.6), (OMAR, 8.1), (SARA, 5.1), (LAYLA, 4.6), (OMAR, 0.6)] {
            self.activity(self.ago(hours), user, "signed_in", None);
        }
        self.activities.sort_by_key(|a| a.0);
        for (at, user, kind, ref_id) in std::mem::take(&mut self.activities) {
            self.tx.execute(
                "INSERT INTO user_activities (user_id, kind, ref_id, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![self.users[user], kind, ref_id, format_ts(at)],
            )?;
        }
        Ok(())
    }

    fn activity(&mut self, at: DateTime<Utc>, user: usize, kind: &'static str, ref_id: Option<String>) {
        self.activities.push((at, user, kind, ref_id));
    }

    /// Inserts the three challenges and their submissions; returns the open one's id.
    fn challenges(&mut self) -> Result<String, DemoError> {
        let open = self.challenge(
            LAYLA,
            "تحدي الري الذكي · Smart irrigation",
            "صمّم حلاً منخفض التكلفة يقلل استهلاك مياه الري في المزارع الصغيرة بنسبة ٢٠٪ على الأقل.\n\
             Design a low-cost way for small farms to cut irrigation water use by at least 20%.",
            "open",
            24.0 * 5.0,
            -24.0 * 10.0,
        )?;
        self.submission(&open, OMAR, "حساسات رطوبة متصلة", "شبكة حساسات رطوبة مع تطبيق تنبيهات.", "submitted", 30.0)?;
        self.submission(
            &open,
            SARA,
            "Drip scheduling from weather data",
            "Schedule drip irrigation from a free weather feed.",
            "submitted",
            20.0,
        )?;

        let judging = self.challenge(
            SARA,
            "تحدي الطاقة الشمسية للمدارس · Solar schools",
            "اقترح خطة لتزويد مدرسة حكومية بالطاقة الشمسية مع نموذج تمويل واقعي.\n\
             Propose a plan to power a public school with solar energy, with a realistic funding model.",
            "judging",
            24.0 * 12.0,
            26.5,
        )?;
        self.submission(
            &judging,
            LAYLA,
            "ألواح على مظلات المواقف",
            "تركيب الألواح فوق مظلات مواقف السيارات.",
            "submitted",
            60.0,
        )?;
        self.submission(
            &judging,
            OMAR,
            "Community solar bonds",
            "Parents and local businesses fund panels through small bonds.",
            "accepted",
            50.0,
        )?;

        let closed = self.challenge(
            OMAR,
            "تحدي إعادة تدوير النفايات الإلكترونية · E-waste",
            "كيف نجمع الأجهزة الإلكترونية القديمة من المنازل ونعيد تدويرها بأمان؟\n\
             How can old electronics be collected from homes and recycled safely?",
            "closed",
            24.0 * 30.0,
            24.0 * 8.0,
        )?;
        self.submission(
            &closed,
            LAYLA,
            "نقاط تجميع في المدارس",
            "صناديق تجميع في المدارس مع مكافآت للطلاب.",
            "accepted",
            24.0 * 12.0,
        )?;
        self.submission(
            &closed,
            SARA,
            "Mail-back envelopes",
            "Prepaid envelopes for small devices.",
            "rejected",
            24.0 * 10.0,
        )?;
        Ok(open)
    }

    /// A challenge created `created_hours` ago whose deadline was `deadline_hours` ago
    /// (negative: in the future).
    fn challenge(
        &mut self,
        by: usize,
        title: &str,
        description: &str,
        status: &str,
        created_hours: f64,
        deadline_hours: f64,
    ) -> Result<String, DemoError> {
        let created = self.ago(created_hours);
        let id = id_at(created);
        let updated = if status == "open" { created } else { self.ago(deadline_hours.max(0.0) - 1.0 / 60.0) };
        self.tx.execute(
            "INSERT INTO challenges (id, title, description, status, deadline, created_by, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                id,
                title,
                description,
                status,
                format_ts(self.ago(deadline_hours)),
                self.users[by],
                format_ts(created),
                format_ts(updated.min(self.now)),
            ],
        )?;
        self.activity(created, by, "challenge_created", Some(id.clone()));
        Ok(id)
    }

    fn submission(
        &mut self,
        challenge: &str,
        by: usize,
        title: &str,
        content: &str,
        status: &str,
        hours: f64,
    ) -> Result<(), DemoError> {
        let created = self.ago(hours);
        let id = id_at(created);
        let updated = if status == "submitted" { created } else { self.ago(hours / 2.0) };
        self.tx.execute(
            "INSERT INTO challenge_submissions (id, challenge_id, user_id, title, content, status, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![id, challenge, self.users[by], title, content, status, format_ts(created), format_ts(updated)],
        )?;
        self.activity(created, by, "submission_created", Some(id));
        Ok(())
    }

    fn rooms(&mut self) -> Result<(), DemoError> {
        let all = [LAYLA, OMAR, SARA];
        let general = self.room("عام", "channel", LAYLA, 72.0, &all)?;
        let general_msgs = self.messages(&general, GENERAL, GENERAL_REACTIONS)?;
        let ideas = self.room("أفكار", "channel", SARA, 62.0, &all)?;
        let ideas_msgs = self.messages(&ideas, IDEAS, IDEAS_REACTIONS)?;
        let direct = self.room("ليلى و عمر", "direct", LAYLA, 27.5, &[LAYLA, OMAR])?;
        let direct_msgs = self.messages(&direct, DIRECT, DIRECT_REACTIONS)?;

        // Everyone has read everything, except Layla, who has a few unread messages in both
        // channels (the unread badges show something on first start).
        for (room, msgs, unread_for_layla) in
            [(&general, &general_msgs, 4), (&ideas, &ideas_msgs, 3), (&direct, &direct_msgs, 0)]
        {
            let last = msgs.last().map(|m| m.1).unwrap_or(self.now);
            self.tx.execute(
                "UPDATE room_members SET last_read_at = ?2 WHERE room_id = ?1",
                params![room, format_ts(last)],
            )?;
            if unread_for_layla > 0 {
                let read_upto = msgs[msgs.len() - 1 - unread_for_layla].1;
                self.tx.execute(
                    "UPDATE room_members SET last_read_at = ?3 WHERE room_id = ?1 AND user_id = ?2",
                    params![room, self.users[LAYLA], format_ts(read_upto)],
                )?;
            }
        }
        Ok(())
    }

    fn room(&mut self, name: &str, kind: &str, by: usize, hours: f64, members: &[usize]) -> Result<String, DemoError> {
        let created = self.ago(hours);
        let id = id_at(created);
        self.tx.execute(
            "INSERT INTO chat_rooms (id, name, kind, challenge_id, created_by, created_at) VALUES (?1, ?2, ?3, NULL, ?4, ?5)",
            params![id, name, kind, self.users[by], format_ts(created)],
        )?;
        for &m in members {
            let role = if m == by && kind == "channel" { "admin" } else { "member" };
            self.tx.execute(
                "INSERT INTO room_members (room_id, user_id, role, joined_at, last_read_at) VALUES (?1, ?2, ?3, ?4, NULL)",
                params![id, self.users[m], role, format_ts(created)],
            )?;
        }
        Ok(id)
    }

    /// Inserts a room's messages and reactions; returns `(id, sent at)` per message.
    fn messages(
        &mut self,
        room: &str,
        lines: &[Line],
        reactions: &[(usize, usize, &str)],
    ) -> Result<Vec<(String, DateTime<Utc>)>, DemoError> {
        let mut sent: Vec<(String, DateTime<Utc>)> = Vec::with_capacity(lines.len());
        for Line(who, hours, text, reply, edited) in lines {
            let at = self.ago(*hours);
            let id = id_at(at);
            let reply_to = reply.and_then(|i| sent.get(i)).map(|m| m.0.clone());
            let edited_at = edited.then(|| format_ts((at + Duration::minutes(4)).min(self.now)));
            self.tx.execute(
                "INSERT INTO chat_messages (id, room_id, user_id, content, type, reply_to, edited_at, deleted_at, created_at)
                 VALUES (?1, ?2, ?3, ?4, 'text', ?5, ?6, NULL, ?7)",
                params![id, room, self.users[*who], text, reply_to, edited_at, format_ts(at)],
            )?;
            self.activity(at, *who, "message_sent", Some(id.clone()));
            sent.push((id, at));
        }
        for &(index, who, emoji) in reactions {
            let Some((message, at)) = sent.get(index) else {
                continue;
            };
            let when = (*at + Duration::minutes(3)).min(self.now);
            self.tx.execute(
                "INSERT INTO message_reactions (message_id, user_id, emoji, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![message, self.users[who], emoji, format_ts(when)],
            )?;
        }
        Ok(sent)
    }

    fn document(&mut self, challenge: &str) -> Result<(), DemoError> {
        let created = self.ago(40.0);
        let id = id_at(created);
        let updated = self.ago(25.5);
        self.tx.execute(
            "INSERT INTO collaborative_documents (id, title, challenge_id, created_by, content, version, last_modified_by, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7)",
            params![
                id,
                "خطة الفريق · Team plan",
                challenge,
                self.users[LAYLA],
                document_text(DOCUMENT),
                self.users[OMAR],
                format_ts(updated)
            ],
        )?;
        for (who, role) in [(LAYLA, "editor"), (OMAR, "editor"), (SARA, "viewer")] {
            self.tx.execute(
                "INSERT INTO document_members (document_id, user_id, role) VALUES (?1, ?2, ?3)",
                params![id, self.users[who], role],
            )?;
        }
        self.tx.execute(
            "INSERT INTO document_updates (id, document_id, user_id, \"update\", created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id_at(created), id, self.users[LAYLA], document_update(DOCUMENT), format_ts(created)],
        )?;
        self.activity(created, LAYLA, "document_created", Some(id.clone()));
        self.activity(self.ago(30.0), OMAR, "document_edited", Some(id.clone()));
        self.activity(updated, OMAR, "document_edited", Some(id));
        Ok(())
    }
}

/// The plain-text rendering of `blocks` (`collaborative_documents.content`).
fn document_text(blocks: &[Block]) -> String {
    blocks.iter().flat_map(Block::lines).collect::<Vec<_>>().join("\n")
}

/// One yrs v1 update (base64) that writes `blocks` into the `Y.XmlFragment` Tiptap binds
/// ([`DOCUMENT_ROOT`]) exactly as y-prosemirror stores ProseMirror nodes: an `XmlElement` per
/// node named after its type, its attributes as element attributes (numbers stay numbers), and
/// its characters in an `XmlText`.
fn document_update(blocks: &[Block]) -> String {
    use base64::Engine;
    use yrs::types::xml::{Xml, XmlElementPrelim, XmlTextPrelim};
    use yrs::{Any, Doc, Transact, XmlFragment};
    let doc = Doc::new();
    let root = doc.get_or_insert_xml_fragment(DOCUMENT_ROOT);
    let mut txn = doc.transact_mut();
    for block in blocks {
        match block {
            Block::Heading(level, text) => {
                let h = root.push_back(&mut txn, XmlElementPrelim::empty("heading"));
                h.insert_attribute(&mut txn, "level", Any::from(*level));
                h.push_back(&mut txn, XmlTextPrelim::new(*text));
            }
            Block::Paragraph(text) => {
                let p = root.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
                p.push_back(&mut txn, XmlTextPrelim::new(*text));
            }
            Block::Bullets(items) => {
                let list = root.push_back(&mut txn, XmlElementPrelim::empty("bulletList"));
                for item in *items {
                    let li = list.push_back(&mut txn, XmlElementPrelim::empty("listItem"));
                    let p = li.push_back(&mut txn, XmlElementPrelim::empty("paragraph"));
                    p.push_back(&mut txn, XmlTextPrelim::new(*item));
                }
            }
        }
    }
    base64::engine::general_purpose::STANDARD.encode(txn.encode_update_v1())
}

/// A UUID v7 carrying `t`, so ids sort like the client-made ones would.
fn id_at(t: DateTime<Utc>) -> String {
    let secs = u64::try_from(t.timestamp()).unwrap_or(0);
    uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, t.timestamp_subsec_nanos())).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(db: &Db, sql: &str) -> i64 {
        db.read_blocking(|c| c.query_row(sql, [], |r| r.get::<_, i64>(0))).expect("count")
    }

    #[test]
    fn seeding_twice_writes_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).expect("open");
        seed(&db).expect("first seed");
        let messages = count(&db, "SELECT count(*) FROM chat_messages");
        assert!(messages > 40, "{messages} messages");
        seed(&db).expect("second seed");
        assert_eq!(count(&db, "SELECT count(*) FROM chat_messages"), messages);
        assert_eq!(count(&db, "SELECT count(*) FROM auth_users"), 3);
    }

    #[test]
    fn scripted_replies_point_backwards_and_reactions_at_real_messages() {
        for (lines, reactions) in [(GENERAL, GENERAL_REACTIONS), (IDEAS, IDEAS_REACTIONS), (DIRECT, DIRECT_REACTIONS)] {
            for (i, l) in lines.iter().enumerate() {
                assert!(l.3.is_none_or(|r| r < i), "line {i} replies to a later message");
                assert!(i == 0 || lines[i - 1].1 > l.1, "line {i} is not after the one before it");
            }
            assert!(reactions.iter().all(|r| r.0 < lines.len()));
        }
    }

    /// The seeded update decoded into a fresh doc, next to the seeded `content`.
    fn seeded_document() -> (yrs::Doc, String) {
        use base64::Engine;
        use yrs::updates::decoder::Decode;
        use yrs::{Transact, Update};
        let dir = tempfile::tempdir().expect("temp dir");
        let db = Db::open(dir.path()).expect("open");
        seed(&db).expect("seed");
        let (content, update): (String, String) = db
            .read_blocking(|c| {
                c.query_row(
                    "SELECT d.content, u.\"update\" FROM collaborative_documents d JOIN document_updates u ON u.document_id = d.id",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .expect("document with one update");
        let bytes = base64::engine::general_purpose::STANDARD.decode(update).expect("base64");
        let doc = yrs::Doc::new();
        doc.transact_mut().apply_update(Update::decode_v1(&bytes).expect("v1 update")).expect("apply");
        (doc, content)
    }

    /// Walks one node of the fragment, failing unless it is a node of Tiptap's StarterKit schema
    /// stored the way y-prosemirror stores it, and collects its plain-text lines (one per
    /// paragraph or heading: the engine's rendering, written here independently of the seed).
    fn tiptap_block<T: yrs::ReadTxn>(txn: &T, node: &yrs::types::xml::XmlOut, lines: &mut Vec<String>) {
        use yrs::types::xml::{Xml, XmlOut};
        use yrs::{Any, GetString, Out, XmlFragment};
        let XmlOut::Element(e) = node else { panic!("a block must be an XmlElement, found {node:?}") };
        let attributes: Vec<(String, String)> =
            e.attributes(txn).map(|(k, v)| (k.to_string(), v.to_string(txn))).collect();
        let children: Vec<XmlOut> = e.children(txn).collect();
        // Inline content: one XmlText without formatting (y-prosemirror's shape of plain text).
        let inline = |children: &[XmlOut]| -> String {
            let [XmlOut::Text(t)] = children else {
                panic!("<{}> must hold exactly one XmlText: {children:?}", e.tag())
            };
            let text = t.get_string(txn);
            assert!(!text.is_empty() && !text.contains('<'), "<{}> holds plain, non-empty text: {text:?}", e.tag());
            text
        };
        match e.tag().as_ref() {
            "paragraph" => {
                assert!(attributes.is_empty(), "a paragraph has no attributes: {attributes:?}");
                lines.push(inline(&children));
            }
            "heading" => {
                assert_eq!(attributes.len(), 1, "a heading has exactly its level: {attributes:?}");
                let level = e.get_attribute(txn, "level");
                // A JS number (not a string, not a BigInt) from 1 to 6, as ProseMirror's attrs hold it.
                let Some(Out::Any(Any::Number(n))) = level else { panic!("heading level is not a number: {level:?}") };
                assert!(n.as_f64().is_some_and(|l| (1.0..=6.0).contains(&l)), "heading level {n:?}");
                lines.push(inline(&children));
            }
            "bulletList" => {
                assert!(attributes.is_empty() && !children.is_empty(), "a non-empty bulletList without attributes");
                for item in &children {
                    let XmlOut::Element(li) = item else { panic!("a bulletList holds listItems, found {item:?}") };
                    assert_eq!(li.tag().as_ref(), "listItem");
                    let inner: Vec<XmlOut> = li.children(txn).collect();
                    assert_eq!(inner.len(), 1, "a listItem holds one paragraph");
                    let XmlOut::Element(p) = &inner[0] else { panic!("a listItem holds a paragraph") };
                    assert_eq!(p.tag().as_ref(), "paragraph");
                    tiptap_block(txn, &inner[0], lines);
                }
            }
            other => panic!("<{other}> is not a top-level node of the editor's schema"),
        }
    }

    #[test]
    fn seeded_document_is_tiptap_rich_text_whose_rendering_is_the_content() {
        use yrs::{ReadTxn, Transact, XmlFragment};
        let (doc, content) = seeded_document();
        let txn = doc.transact();
        let roots: Vec<&str> = txn.root_refs().map(|(name, _)| name).collect();
        assert_eq!(
            roots,
            [DOCUMENT_ROOT],
            "the update writes only the editor's fragment (no Y.Text the editor never shows)"
        );
        let fragment = txn.get_xml_fragment(DOCUMENT_ROOT).expect("the editor's fragment");
        let mut lines = Vec::new();
        let blocks: Vec<_> = fragment.children(&txn).collect();
        for block in &blocks {
            tiptap_block(&txn, block, &mut lines);
        }
        let tags: Vec<String> = blocks
            .iter()
            .filter_map(|b| if let yrs::types::xml::XmlOut::Element(e) = b { Some(e.tag().to_string()) } else { None })
            .collect();
        for tag in ["heading", "paragraph", "bulletList"] {
            assert!(tags.iter().any(|t| t == tag), "the demo shows a {tag}: {tags:?}");
        }
        assert_eq!(lines.join("\n"), content, "the CRDT and the plain-text content must agree");
        assert!(content.contains("الري الذكي") && content.contains("smart irrigation"), "Arabic and English text");
    }
}
