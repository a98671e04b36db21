//! The demo seed: a business and a personal account, several customers and
//! realistic conversations (a long one, a group thread, a pending request,
//! reactions, replies, media, a link, a like).

use serde::Serialize;
use serde_json::{Value, json};

use crate::control::{account_json, user_json};
use crate::state::{
    AccountKind, ItemAttachment, ItemKind, Micros, NewAccount, NewItem, Sandbox, SandboxError,
    World,
};

/// What the demo seed created.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSeed {
    /// The business account (control-API view, credentials included).
    pub business: Value,
    /// The personal account (control-API view, credentials included).
    pub personal: Value,
    /// The customers.
    pub customers: Vec<Value>,
    /// The business's long conversation (more than 20 messages).
    pub long_thread_id: String,
    /// The personal account's group thread.
    pub group_thread_id: String,
    /// The personal account's pending message request.
    pub pending_thread_id: String,
}

const MINUTE: Micros = 60 * 1_000_000;

struct Script<'w> {
    w: &'w mut World,
    thread: String,
    at: Micros,
}

impl Script<'_> {
    fn say(&mut self, who: &str, new: NewItem) -> Result<String, SandboxError> {
        self.at += 3 * MINUTE;
        let item =
            self.w.append_item(&self.thread, who, NewItem { at_us: Some(self.at), ..new })?;
        Ok(item.id)
    }
    fn text(&mut self, who: &str, text: &str) -> Result<String, SandboxError> {
        self.say(who, NewItem { text: Some(text.to_owned()), ..NewItem::default() })
    }
}

fn attach(kind: ItemKind, att: &str, url: &str, text: Option<&str>) -> NewItem {
    NewItem {
        kind: Some(kind),
        attachments: vec![ItemAttachment { kind: att.to_owned(), url: url.to_owned() }],
        text: text.map(str::to_owned),
        ..NewItem::default()
    }
}

fn account(
    w: &mut World,
    kind: AccountKind,
    username: &str,
    full: &str,
) -> Result<(String, String), SandboxError> {
    let a = w.create_account(NewAccount {
        kind,
        username: username.to_owned(),
        full_name: Some(full.to_owned()),
        password: Some("demo-password".to_owned()),
        two_factor: false,
        challenge: false,
    })?;
    Ok((a.id, a.pk))
}

/// Populates `w` with the demo data.
///
/// # Errors
/// [`SandboxError::Conflict`] when the demo usernames already exist.
pub fn seed_world(w: &mut World) -> Result<DemoSeed, SandboxError> {
    let (biz, biz_pk) = account(w, AccountKind::Business, "sunrise_bakery", "Sunrise Bakery")?;
    let (me, me_pk) = account(w, AccountKind::Personal, "maya.lens", "Maya Lens")?;
    let names = [
        ("alex_rivera", "Alex Rivera"),
        ("jordan.lee", "Jordan Lee"),
        ("sam_okafor", "Sam Okafor"),
        ("priya.n", "Priya Nair"),
        ("lucas_m", "Lucas Martin"),
        ("emma_b", "Emma Brooks"),
    ];
    let mut pks = Vec::new();
    for (u, f) in names {
        pks.push(w.create_customer(u, Some(f.to_owned()))?.pk);
    }
    let (alex, jordan, sam, priya, lucas, emma) =
        (&pks[0], &pks[1], &pks[2], &pks[3], &pks[4], &pks[5]);
    let start = w.now_us() - 3 * 24 * 60 * MINUTE;

    // Business: a long order conversation with Alex (26 messages).
    let long = w.thread_with(&biz, std::slice::from_ref(alex), false)?;
    let mut s = Script { w, thread: long.clone(), at: start };
    s.text(alex, "Hi! Do you take custom orders for birthday cakes?")?;
    s.text(&biz_pk, "Hello Alex! Yes, we do. What date do you need it for?")?;
    s.text(alex, "Saturday the 28th, for about 15 people")?;
    let q = s.text(
        &biz_pk,
        "Great. Any flavour in mind? Our bestsellers are lemon-raspberry and chocolate hazelnut.",
    )?;
    let r = s.say(
        alex,
        NewItem {
            text: Some("Chocolate hazelnut please!".into()),
            reply_to: Some(q),
            ..NewItem::default()
        },
    )?;
    s.text(&biz_pk, "Perfect choice. Would you like a message on top?")?;
    s.text(alex, "\"Happy 30th Dana\" in gold if possible")?;
    s.text(&biz_pk, "Gold lettering is no problem.")?;
    s.say(
        &biz_pk,
        attach(
            ItemKind::Media,
            "image",
            "https://scontent.cdninstagram.com/v/t51.2885-15/demo_cake_sample.jpg",
            None,
        ),
    )?;
    s.text(&biz_pk, "This is a similar one we made last week")?;
    s.text(alex, "Wow, that's beautiful")?;
    s.text(alex, "How much would that be?")?;
    s.text(&biz_pk, "For 15 people it's $65, plus $5 for the gold lettering.")?;
    s.text(alex, "Sounds good. Can I pick it up in the morning?")?;
    s.text(&biz_pk, "We open at 7am, so any time after that.")?;
    s.text(alex, "Do you need a deposit?")?;
    s.say(
        &biz_pk,
        NewItem {
            kind: Some(ItemKind::Link),
            text: Some(
                "Yes, 50% — you can pay here: https://sunrise-bakery.example/pay/4821".into(),
            ),
            link_url: Some("https://sunrise-bakery.example/pay/4821".into()),
            ..NewItem::default()
        },
    )?;
    s.text(alex, "Paid!")?;
    s.text(&biz_pk, "Got it, thank you. Your order number is #4821.")?;
    s.text(alex, "Can you also do a few cupcakes?")?;
    s.text(&biz_pk, "Sure, how many?")?;
    s.text(alex, "A dozen, vanilla")?;
    s.text(&biz_pk, "Added: 12 vanilla cupcakes, $24.")?;
    s.text(alex, "Thanks so much!")?;
    let last_biz = s.text(&biz_pk, "See you Saturday! 🎂")?;
    s.say(alex, NewItem { kind: Some(ItemKind::Like), ..NewItem::default() })?;
    w.set_reaction(&long, &r, &biz_pk, Some("\u{2764}\u{fe0f}"))?;
    w.set_reaction(&long, &last_biz, alex, Some("😍"))?;

    // Business: Jordan shares a post and mentions the bakery in a story.
    let jt = w.thread_with(&biz, std::slice::from_ref(jordan), false)?;
    let mut s = Script { w, thread: jt, at: start + 24 * 60 * MINUTE };
    s.say(
        jordan,
        attach(ItemKind::XmaMediaShare, "share", "https://www.instagram.com/p/C0demoPost1/", None),
    )?;
    s.text(jordan, "Is this the sourdough you sell on weekends?")?;
    s.text(&biz_pk, "Yes! Saturdays and Sundays until sold out.")?;
    s.say(
        jordan,
        attach(
            ItemKind::XmaReelMention,
            "story_mention",
            "https://lookaside.fbsbx.com/ig_messaging_cdn/?asset_id=demo_story",
            None,
        ),
    )?;

    // Personal: Sam, with a reel, a voice note and every other item type.
    let st = w.thread_with(&me, std::slice::from_ref(sam), false)?;
    let mut s = Script { w, thread: st, at: start + 30 * 60 * MINUTE };
    s.text(sam, "did you see this?")?;
    s.say(
        sam,
        attach(ItemKind::Clip, "ig_reel", "https://www.instagram.com/reel/C0demoReel/", None),
    )?;
    s.text(&me_pk, "haha yes, the cat at the end 😂")?;
    s.say(sam, attach(ItemKind::VoiceMedia, "audio", "https://cdn.example/voice/demo.m4a", None))?;
    // The rest of the item types Instagram's apps put in a thread.
    let cdn = "https://scontent.cdninstagram.com/v/t51.2885-15";
    s.say(sam, attach(ItemKind::VisualMedia, "image", &format!("{cdn}/demo_view_once.jpg"), None))?;
    s.say(
        &me_pk,
        attach(
            ItemKind::AnimatedMedia,
            "image",
            "https://media.giphy.com/media/demoGif/200.gif",
            None,
        ),
    )?;
    s.say(sam, NewItem { kind: Some(ItemKind::StaticSticker), ..NewItem::default() })?;
    s.say(
        sam,
        NewItem {
            kind: Some(ItemKind::StoryShare),
            text: Some("look who's here".into()),
            ..NewItem::default()
        },
    )?;
    s.say(
        sam,
        attach(
            ItemKind::FelixShare,
            "video",
            "https://scontent.cdninstagram.com/v/t50.2886-16/demo_igtv.mp4",
            Some("watch till the end"),
        ),
    )?;
    s.say(sam, NewItem { kind: Some(ItemKind::Placeholder), ..NewItem::default() })?;
    s.say(sam, NewItem { kind: Some(ItemKind::ExpiredPlaceholder), ..NewItem::default() })?;
    s.say(
        &me_pk,
        NewItem {
            kind: Some(ItemKind::VideoCallEvent),
            text: Some("Video chat ended".into()),
            ..NewItem::default()
        },
    )?;
    s.say(sam, NewItem { kind: Some(ItemKind::ReactionLog), ..NewItem::default() })?;
    s.say(&me_pk, attach(ItemKind::RavenMedia, "video", &format!("{cdn}/demo_clip.mp4"), None))?;
    s.say(
        sam,
        NewItem {
            media_id: Some("3300000000000000001_72000000001".into()),
            ..attach(
                ItemKind::MediaShare,
                "image",
                &format!("{cdn}/demo_post.jpg"),
                Some("brunch?"),
            )
        },
    )?;
    let stories = "https://www.instagram.com/stories/sam_okafor/3300000000000000002/";
    s.say(sam, attach(ItemKind::XmaStoryShare, "share", stories, Some("this view")))?;
    s.say(&me_pk, attach(ItemKind::XmaReelShare, "share", stories, Some("so jealous")))?;
    s.say(
        sam,
        attach(ItemKind::XmaClip, "ig_reel", "https://www.instagram.com/reel/C0demoReel2/", None),
    )?;
    s.say(
        &me_pk,
        NewItem {
            kind: Some(ItemKind::ReelShare),
            text: Some("love this spot".into()),
            attachments: vec![ItemAttachment {
                kind: "image".into(),
                url: "https://scontent.cdninstagram.com/v/t51.2885-15/demo_story.jpg".into(),
            }],
            ..NewItem::default()
        },
    )?;

    // Personal: a named group thread.
    let group = w.thread_with(&me, &[priya.clone(), lucas.clone()], false)?;
    if let Ok(t) = w.thread_mut(&group) {
        t.title = Some("Weekend trip".to_owned());
    }
    let mut s = Script { w, thread: group.clone(), at: start + 40 * 60 * MINUTE };
    s.say(
        &me_pk,
        NewItem {
            kind: Some(ItemKind::ActionLog),
            text: Some("maya.lens named the group Weekend trip.".into()),
            ..NewItem::default()
        },
    )?;
    s.text(priya, "Cabin is booked for Friday 🎉")?;
    s.text(lucas, "I'll bring the board games")?;
    let plan = s.text(&me_pk, "I can drive, leaving at 5pm")?;
    s.text(priya, "Perfect")?;
    w.set_reaction(&group, &plan, lucas, Some("👍"))?;

    // Personal: a pending request from Emma.
    let pending = w.thread_with(&me, std::slice::from_ref(emma), true)?;
    let mut s = Script { w, thread: pending.clone(), at: start + 50 * 60 * MINUTE };
    s.text(emma, "Hi Maya! Are your prints still for sale?")?;

    // Earlier history is read; the newest incoming messages stay unread.
    for t in [&long, &group] {
        if let Ok(th) = w.thread(t)
            && let Some(i) = th.items.iter().rev().nth(2).map(|i| i.id.clone())
        {
            let owner = if th.account == biz { biz_pk.clone() } else { me_pk.clone() };
            w.mark_seen(t, &i, &owner)?;
        }
    }

    let business = account_json(w.account(&biz)?);
    let personal = account_json(w.account(&me)?);
    let customers = pks.iter().filter_map(|p| w.users.get(p)).map(user_json).collect();
    Ok(DemoSeed {
        business,
        personal,
        customers,
        long_thread_id: long,
        group_thread_id: group,
        pending_thread_id: pending,
    })
}

impl Sandbox {
    /// Loads the demo data (see the module docs) and returns what it created,
    /// credentials included.
    ///
    /// # Errors
    /// [`SandboxError::Conflict`] when the demo usernames already exist.
    pub async fn seed_demo(&self) -> Result<DemoSeed, SandboxError> {
        let mut seed = self.write(seed_world).await?;
        if let Some(base) = self.base_url() {
            seed.business["base_url"] = json!(base);
            seed.personal["base_url"] = json!(base);
        }
        Ok(seed)
    }
}
