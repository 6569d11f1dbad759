//! Native toasts for the engine's notices (new challenge, status change, new submission to my
//! challenge, decision on my submission) with `notify-rust`.
//!
//! The engine has already applied the user's mutes (global, per kind, per challenge) and
//! grouped bursts; the shell adds only the tray's "Pause notifications"
//! ([`crate::config::Settings::notifications_paused`]). Texts follow the app's language.
//!
//! Clicking a toast (its default action) shows and focuses the window and emits
//! `navigate { screen: "challenge", id }`. That needs a notification server that reports
//! actions (the freedesktop protocol on Linux / BSD); on Windows and macOS `notify-rust`
//! reports no click, so there the toast only informs.
//!
//! ## Failure modes
//! Showing runs on its own thread (the D-Bus call blocks, and waiting for a click blocks until
//! the toast closes). With no notification server, no session bus, or a refusal, the error is
//! logged and the `notifications` capability is marked unavailable with the reason (it turns
//! available again after a toast gets through). Nothing panics.

use ruwad_core::notify::{Notice, NoticeKind};
use tauri::{AppHandle, Manager};

use crate::config::Language;
use crate::events::{AppEvent, Screen, ShellEvent};
use crate::state::AppState;

/// Shows `notices` unless paused. Returns at once.
pub fn show(app: &AppHandle, notices: &[Notice]) {
    let state = app.state::<AppState>();
    let settings = state.settings();
    if settings.notifications_paused || notices.is_empty() {
        tracing::debug!(count = notices.len(), paused = settings.notifications_paused, "no toast");
        return;
    }
    let app = app.clone();
    let notices = notices.to_vec();
    let language = settings.language;
    let spawned = std::thread::Builder::new().name("toast".into()).spawn(move || {
        for notice in notices {
            let (summary, body) = text(&notice, language);
            match deliver(&app, &summary, &body, notice.challenge_id, language) {
                Ok(()) => app.state::<AppState>().set_notifications(true, None),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot show a toast");
                    app.state::<AppState>().set_notifications(false, Some(format!("cannot show notifications: {e}")));
                    return;
                }
            }
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the toast thread");
    }
}

/// Checks that a notification server exists (Linux / BSD; elsewhere assumed until a toast
/// fails). Blocking.
pub fn probe() -> Result<(), String> {
    #[cfg(all(unix, not(target_os = "macos")))]
    {
        notify_rust::get_server_information().map(|_| ()).map_err(|e| e.to_string())
    }
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    {
        Ok(())
    }
}

#[cfg(all(unix, not(target_os = "macos")))]
fn deliver(
    app: &AppHandle,
    summary: &str,
    body: &str,
    challenge: Option<uuid::Uuid>,
    language: Language,
) -> Result<(), notify_rust::error::Error> {
    let mut toast = notify_rust::Notification::new();
    toast.appname("Ruwād").summary(summary).body(body);
    if challenge.is_some() {
        toast.action("default", if language == Language::Ar { "فتح" } else { "Open" });
    }
    let handle = toast.show()?;
    if let Some(id) = challenge {
        let app = app.clone();
        // Blocks until the toast is clicked, dismissed or expires.
        handle.wait_for_action(move |action| {
            if action == "default" {
                tracing::info!(challenge = %id, "toast clicked: opening the challenge");
                crate::window::focus(&app);
                crate::events::emit(&app, AppEvent::Shell(ShellEvent::Navigate { screen: Screen::Challenge, id }));
            }
        });
    }
    Ok(())
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
fn deliver(
    _app: &AppHandle,
    summary: &str,
    body: &str,
    _challenge: Option<uuid::Uuid>,
    _language: Language,
) -> Result<(), notify_rust::error::Error> {
    notify_rust::Notification::new().appname("Ruwād").summary(summary).body(body).show().map(|_| ())
}

/// The toast's summary and body.
pub fn text(notice: &Notice, language: Language) -> (String, String) {
    let n = notice.count;
    let title = notice.title.clone();
    let status = notice.status.as_deref().unwrap_or_default();
    match language {
        Language::En => match notice.kind {
            NoticeKind::NewChallenge if n > 1 => (format!("{n} new challenges"), title),
            NoticeKind::NewChallenge => ("New challenge".into(), title),
            NoticeKind::ChallengeStatus => (format!("Challenge {}", status_en(status)), title),
            NoticeKind::NewSubmission if n > 1 => (format!("{n} new submissions"), title),
            NoticeKind::NewSubmission => ("New submission".into(), title),
            NoticeKind::SubmissionDecision => (format!("Your submission was {}", status_en(status)), title),
        },
        Language::Ar => match notice.kind {
            NoticeKind::NewChallenge if n > 1 => (format!("تحديات جديدة: {n}"), title),
            NoticeKind::NewChallenge => ("تحدٍّ جديد".into(), title),
            NoticeKind::ChallengeStatus => (format!("التحدي {}", status_ar(status)), title),
            NoticeKind::NewSubmission if n > 1 => (format!("مشاركات جديدة: {n}"), title),
            NoticeKind::NewSubmission => ("مشاركة جديدة".into(), title),
            NoticeKind::SubmissionDecision => (format!("مشاركتك: {}", status_ar(status)), title),
        },
    }
}

fn status_en(status: &str) -> &str {
    match status {
        "open" => "is open",
        "judging" => "is being judged",
        "closed" => "is closed",
        "draft" => "is a draft again",
        other => other,
    }
}

fn status_ar(status: &str) -> &str {
    match status {
        "open" => "مفتوح",
        "judging" => "قيد التحكيم",
        "closed" => "مغلق",
        "accepted" => "مقبولة",
        "rejected" => "مرفوضة",
        "draft" => "مسودة",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(kind: NoticeKind, status: Option<&str>, count: u32) -> Notice {
        Notice { kind, challenge_id: None, title: "Smart water".into(), status: status.map(String::from), count }
    }

    #[test]
    fn toast_texts_follow_the_language_and_the_group_size() {
        assert_eq!(
            text(&notice(NoticeKind::NewChallenge, None, 1), Language::En),
            ("New challenge".into(), "Smart water".into())
        );
        assert_eq!(text(&notice(NoticeKind::NewSubmission, None, 50), Language::En).0, "50 new submissions");
        assert_eq!(
            text(&notice(NoticeKind::ChallengeStatus, Some("judging"), 1), Language::En).0,
            "Challenge is being judged"
        );
        assert_eq!(
            text(&notice(NoticeKind::SubmissionDecision, Some("accepted"), 1), Language::En).0,
            "Your submission was accepted"
        );
        assert_eq!(text(&notice(NoticeKind::ChallengeStatus, Some("closed"), 1), Language::Ar).0, "التحدي مغلق");
        assert_eq!(
            text(&notice(NoticeKind::NewChallenge, None, 1), Language::Ar).1,
            "Smart water",
            "titles stay as written"
        );
    }
}
