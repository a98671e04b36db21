//! Photo, video and voice sends from local files against the sandbox, over real
//! HTTP: the messenger rupload (resumed when interrupted), the attachment
//! broadcasts, and the bytes served back from the expiring CDN links.

use std::path::{Path, PathBuf};

use igdm::{Client, MediaKind, PacingPolicy};
use igdm_model::{ContentType, Message};
use serde_json::{Value, json};
use sha2::Digest as _;

/// A file of `len` bytes: `head`, then deterministic filler, then `tail`.
fn write_file(dir: &Path, name: &str, head: &[u8], len: usize, tail: &[u8]) -> PathBuf {
    let mut bytes = head.to_vec();
    let mut x: u32 = 0x9E37_79B9;
    while bytes.len() < len - tail.len() {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        bytes.push((x >> 24) as u8);
    }
    bytes.extend_from_slice(tail);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A picture with detail (so that it does not compress to nothing).
fn picture(w: u32, h: u32) -> image::RgbImage {
    image::RgbImage::from_fn(w, h, |x, y| {
        image::Rgb([(x * 7 + y * 3) as u8, (x ^ y) as u8, ((x * y) >> 3) as u8])
    })
}

/// A real `w`×`h` JPEG, followed by `padding` bytes after its end marker.
fn jpeg_sized(dir: &Path, name: &str, w: u32, h: u32, padding: usize) -> PathBuf {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92)
        .encode_image(&picture(w, h))
        .unwrap();
    bytes.resize(bytes.len() + padding, 0);
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn jpeg(dir: &Path) -> PathBuf {
    jpeg_sized(dir, "photo.jpg", 800, 600, 0)
}

/// The dimensions of the JPEG a link serves.
async fn served_jpeg(url: &str) -> (u32, u32) {
    let (status, body) = download(url).await;
    assert_eq!(status, 200, "{url}");
    let img = image::load_from_memory_with_format(&body, image::ImageFormat::Jpeg).unwrap();
    (img.width(), img.height())
}

fn mp4(dir: &Path, name: &str, brand: &[u8; 4], len: usize) -> PathBuf {
    let mut head = b"\x00\x00\x00\x18ftyp".to_vec();
    head.extend_from_slice(brand);
    head.extend_from_slice(b"\x00\x00\x02\x00isommp42");
    write_file(dir, name, &head, len, b"")
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(sha2::Sha256::digest(bytes))
}

async fn newest(client: &Client, conversation: &str) -> Message {
    let (page, _) = client.messages(conversation).limit(5).await.unwrap();
    page.items.into_iter().next().expect("a message")
}

async fn download(url: &str) -> (u16, Vec<u8>) {
    let r = reqwest::get(url).await.unwrap();
    let status = r.status().as_u16();
    (status, r.bytes().await.unwrap().to_vec())
}

/// Sends `path` as `kind` and checks the thread's newest item: its type and
/// the bytes its link serves.
async fn send_and_check(
    client: &Client,
    conversation: &str,
    kind: MediaKind,
    path: &Path,
    want: ContentType,
) -> igdm::MediaOutcome {
    let out = client.send_media(conversation, kind, path).await.unwrap();
    let m = newest(client, conversation).await;
    assert_eq!(m.content_type, want, "{kind:?}: {m:?}");
    let url = m.attachments.first().and_then(|a| a.url.clone()).expect("an attachment link");
    let (status, body) = download(&url).await;
    assert_eq!(status, 200, "{url}");
    assert_eq!(sha(&body), sha(&std::fs::read(path).unwrap()), "{kind:?} bytes changed");
    out
}

#[tokio::test]
async fn photo_video_and_voice_from_files() {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let client = igdm_test::clients::web(&base, &seed, PacingPolicy::none());
    let dir = tempfile::tempdir().unwrap();
    let conversation = seed.group_thread_id.clone();

    let photo = jpeg(dir.path());
    let out =
        send_and_check(&client, &conversation, MediaKind::Photo, &photo, ContentType::Image).await;
    assert_eq!(out.result["content_type"], json!("image"));
    assert!(out.resumed_from.is_empty());

    let video = mp4(dir.path(), "clip.mp4", b"isom", 600_000);
    send_and_check(&client, &conversation, MediaKind::Video, &video, ContentType::Video).await;

    let voice = mp4(dir.path(), "note.m4a", b"M4A ", 40_000);
    send_and_check(&client, &conversation, MediaKind::Voice, &voice, ContentType::Voice).await;

    // The item types Instagram uses for each, newest first.
    let kinds: Vec<&str> = sandbox
        .sandbox()
        .read(|w| {
            let t = &w.threads[&conversation];
            t.items.iter().rev().take(3).map(|i| i.kind.as_str()).collect()
        })
        .await;
    assert_eq!(kinds, vec!["voice_media", "raven_media", "media"]);

    // A PNG, and a JPEG larger than Instagram takes, go as JPEGs of 1080 at most.
    let png = dir.path().join("shot.png");
    picture(2000, 1500).save(&png).unwrap();
    let big = jpeg_sized(dir.path(), "big.jpg", 1200, 1600, 0);
    for (file, want) in [(&png, (1080, 810)), (&big, (810, 1080))] {
        let out = client.send_media(&conversation, MediaKind::Photo, file).await.unwrap();
        assert_eq!(out.result["content_type"], json!("image"));
        let m = newest(&client, &conversation).await;
        assert_eq!(m.content_type, ContentType::Image);
        assert_eq!(served_jpeg(m.attachments[0].url.as_deref().unwrap()).await, want);
    }

    // A text rides along as a message of its own.
    let out = client
        .send_media(&conversation, MediaKind::Photo, &photo)
        .text("from the beach")
        .await
        .unwrap();
    assert_eq!(out.text.as_ref().unwrap()["text"], json!("from the beach"));
}

#[tokio::test]
async fn a_video_larger_than_a_default_body_limit_goes_through() {
    // 6 MB: over the 2 MB an HTTP framework buffers by default, well under
    // Instagram's 25 MB for video.
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let client = igdm_test::clients::web(&base, &seed, PacingPolicy::none());
    let dir = tempfile::tempdir().unwrap();
    let video = mp4(dir.path(), "big.mp4", b"isom", 6_000_000);
    send_and_check(&client, &seed.group_thread_id, MediaKind::Video, &video, ContentType::Video)
        .await;
}

#[tokio::test]
async fn an_interrupted_upload_resumes_from_the_server_offset() {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let client = igdm_test::clients::web(&base, &seed, PacingPolicy::none());
    let dir = tempfile::tempdir().unwrap();
    let video = mp4(dir.path(), "long.mp4", b"isom", 1_500_000);

    igdm_test::sandbox::post_ok(
        &base,
        "/_sandbox/media/interrupt",
        json!({"after_bytes": 400_000}),
    )
    .await;
    let out = send_and_check(
        &client,
        &seed.group_thread_id,
        MediaKind::Video,
        &video,
        ContentType::Video,
    )
    .await;
    assert_eq!(out.resumed_from, vec![400_000]);

    let (_, media) = igdm_test::sandbox::control(&base, "GET", "/_sandbox/media", None).await;
    let posts = media["posts"].as_array().unwrap();
    let statuses: Vec<(u64, u64, u64)> = posts
        .iter()
        .map(|p| {
            (
                p["offset"].as_u64().unwrap(),
                p["bytes"].as_u64().unwrap(),
                p["status"].as_u64().unwrap(),
            )
        })
        .collect();
    // The whole file went once and broke; only the rest went again.
    assert_eq!(statuses, vec![(0, 1_500_000, 503), (400_000, 1_100_000, 200)]);
    assert_eq!(media["media"][0]["sha256"], json!(sha(&std::fs::read(&video).unwrap())));
}

#[tokio::test]
async fn expired_links_are_refused_and_a_reread_gives_fresh_ones() {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let client = igdm_test::clients::web(&base, &seed, PacingPolicy::none());
    let dir = tempfile::tempdir().unwrap();
    let photo = jpeg(dir.path());
    let conversation = seed.group_thread_id.clone();
    send_and_check(&client, &conversation, MediaKind::Photo, &photo, ContentType::Image).await;
    let old = newest(&client, &conversation).await.attachments[0].url.clone().unwrap();

    let v = igdm_test::sandbox::post_ok(&base, "/_sandbox/media/expire", json!({})).await;
    assert!(v["relinked"].as_u64().unwrap() >= 1);
    let (status, body) = download(&old).await;
    assert_eq!((status, body.as_slice()), (403, b"URL signature expired".as_slice()));

    let fresh = newest(&client, &conversation).await.attachments[0].url.clone().unwrap();
    assert_ne!(fresh, old);
    let (status, body) = download(&fresh).await;
    assert_eq!(status, 200);
    assert_eq!(sha(&body), sha(&std::fs::read(&photo).unwrap()));
}

#[tokio::test]
async fn wrong_files_fail_before_any_request_and_the_edge_is_strict() {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let client = igdm_test::clients::web(&base, &seed, PacingPolicy::none());
    let dir = tempfile::tempdir().unwrap();
    let before = igdm_test::sandbox::stats(&base).await;

    let gif = write_file(dir.path(), "pic.gif", b"GIF89a", 1000, b"");
    let err = client.send_media(&seed.group_thread_id, MediaKind::Photo, &gif).await.unwrap_err();
    assert!(err.to_string().contains("not a JPEG or PNG image"), "{err}");
    let broken = write_file(dir.path(), "broken.png", b"\x89PNG\r\n\x1a\n", 1000, b"");
    let err =
        client.send_media(&seed.group_thread_id, MediaKind::Photo, &broken).await.unwrap_err();
    assert!(err.to_string().contains("not a readable image"), "{err}");
    let big = jpeg_sized(dir.path(), "huge.jpg", 64, 64, 8 * 1024 * 1024);
    let err = client.send_media(&seed.group_thread_id, MediaKind::Photo, &big).await.unwrap_err();
    assert!(err.to_string().contains("more than the maximum"), "{err}");
    assert_eq!(igdm_test::sandbox::stats(&base).await, before, "nothing was sent");

    // Instagram app headers on the upload edge: the generic 404.
    let r = reqwest::Client::new()
        .post(format!("{base}/messenger_image/fb_uploader_1"))
        .header("X-IG-App-ID", "936619743392459")
        .body(vec![0xFF, 0xD8, 0xFF])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    // No bearer: refused.
    let r = reqwest::Client::new()
        .post(format!("{base}/messenger_image/fb_uploader_1"))
        .body(vec![0xFF, 0xD8, 0xFF])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["debug_info"]["type"], json!("AuthenticationError"));
}

#[tokio::test]
async fn the_official_api_without_an_upload_names_the_alternatives() {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let client = igdm_test::clients::graph(&base, &seed, PacingPolicy::none());
    let dir = tempfile::tempdir().unwrap();
    let photo = jpeg(dir.path());
    let before = igdm_test::sandbox::stats(&base).await;
    let err = client.send_media(&seed.long_thread_id, MediaKind::Photo, &photo).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains("instagram-graph") && text.contains("public HTTPS URL"), "{text}");
    assert!(text.contains("--image URL"), "{text}");
    let igdm::Error::Api(api) = &err else { panic!("{err:?}") };
    assert_eq!(igdm::exit_code(&api.class), 2);
    assert_eq!(igdm_test::sandbox::stats(&base).await, before, "nothing was sent");
}

/// A PDF of `len` bytes.
fn pdf(dir: &Path, name: &str, len: usize) -> PathBuf {
    write_file(dir, name, b"%PDF-1.7\n", len, b"\n%%EOF\n")
}

#[tokio::test]
async fn a_page_account_uploads_files_and_sends_them_by_attachment_id() {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let client = igdm_test::clients::page(&base, &seed, PacingPolicy::none());
    let dir = tempfile::tempdir().unwrap();
    // A customer writes first: the reply window opens.
    let alex = seed.customers.iter().find(|c| c["username"] == "alex_rivera").unwrap().clone();
    igdm_test::sandbox::post_ok(
        &base,
        &format!("/_sandbox/customers/{}/send", alex["pk"].as_str().unwrap()),
        json!({"to": seed.business["id"], "text": "a picture of the shoe?"}),
    )
    .await;
    let mut p = serde_json::Map::new();
    p.insert("user_id".into(), alex["igsid"].clone());
    let found = client.invoke("find_conversation", p).await.unwrap();
    let conversation = found.data["id"].as_str().unwrap().to_owned();

    // A PNG goes as it is: the Page API takes PNGs.
    let mut png = Vec::new();
    image::DynamicImage::ImageRgb8(picture(300, 200))
        .write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .unwrap();
    let png_path = dir.path().join("shoe.png");
    std::fs::write(&png_path, &png).unwrap();
    let out =
        send_and_check(&client, &conversation, MediaKind::Photo, &png_path, ContentType::Image)
            .await;
    assert!(!out.media_id.is_empty(), "{out:?}");
    assert_eq!(out.result["content_type"], json!("image"), "{out:?}");

    let video = mp4(dir.path(), "clip.mp4", b"isom", 300_000);
    send_and_check(&client, &conversation, MediaKind::Video, &video, ContentType::Video).await;
    let voice = mp4(dir.path(), "note.m4a", b"M4A ", 30_000);
    let out =
        send_and_check(&client, &conversation, MediaKind::Voice, &voice, ContentType::Audio).await;
    assert_eq!(out.result["content_type"], json!("audio"), "{out:?}");
    // A file name Meta would refuse (not ASCII) is replaced in the upload.
    let doc = pdf(dir.path(), "menü.pdf", 50_000);
    let out =
        send_and_check(&client, &conversation, MediaKind::File, &doc, ContentType::File).await;
    assert_eq!(out.bytes, 50_000);

    // Each upload is a reusable attachment: the last one sends again by id.
    let mut p = serde_json::Map::new();
    p.insert("conversation_id".into(), json!(conversation));
    p.insert("type".into(), json!("file"));
    p.insert("attachment_id".into(), json!(out.media_id));
    let again = client.invoke("send_attachment", p).await.unwrap();
    assert_eq!(again.data["content_type"], json!("file"), "{again:?}");

    // Over the connector's limit: refused before any request.
    let before = igdm_test::sandbox::stats(&base).await;
    let big = jpeg_sized(dir.path(), "big.jpg", 32, 32, 8 * 1024 * 1024 + 1);
    let err = client.send_media(&conversation, MediaKind::Photo, &big).await.unwrap_err();
    assert!(err.to_string().contains("at most 8388608 bytes"), "{err}");
    let not_pdf = write_file(dir.path(), "notes.pdf", b"hello", 100, b"");
    let err = client.send_media(&conversation, MediaKind::File, &not_pdf).await.unwrap_err();
    assert!(err.to_string().contains("not a PDF document"), "{err}");
    assert_eq!(igdm_test::sandbox::stats(&base).await, before, "nothing was sent");
}

#[tokio::test]
async fn the_sandbox_upload_checks_what_the_documentation_lists() {
    let (sandbox, seed) = igdm_test::sandbox::seeded().await;
    let base = sandbox.base_url();
    let biz = &seed.business;
    let token = biz["page_token"].as_str().unwrap();
    let page = biz["page_id"].as_str().unwrap();
    let upload = |name: &str, ctype: &str, bytes: Vec<u8>, kind: &str| {
        let form = reqwest::multipart::Form::new()
            .text("platform", "instagram")
            .text("message", json!({"attachment": {"type": kind, "is_reusable": true}}).to_string())
            .part(
                "filedata",
                reqwest::multipart::Part::bytes(bytes)
                    .file_name(name.to_owned())
                    .mime_str(ctype)
                    .unwrap(),
            );
        reqwest::Client::new()
            .post(format!("{base}/v21.0/{page}/message_attachments"))
            .bearer_auth(token)
            .multipart(form)
            .send()
    };
    let ok = upload("a.pdf", "application/pdf", b"%PDF-1.4 x".to_vec(), "file").await.unwrap();
    assert_eq!(ok.status().as_u16(), 200);
    let v: Value = ok.json().await.unwrap();
    assert!(v["attachment_id"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    // A non-ASCII file name, bytes that are not the type, an image over 8 MB.
    for (name, ctype, bytes, kind, says) in [
        ("menü.pdf", "application/pdf", b"%PDF-1.4 x".to_vec(), "file", "ASCII"),
        ("a.pdf", "application/pdf", b"hello".to_vec(), "file", "not a supported file format"),
        (
            "a.jpg",
            "image/jpeg",
            {
                let mut b = vec![0xFF, 0xD8, 0xFF];
                b.resize(8 * 1024 * 1024 + 1, 0);
                b
            },
            "image",
            "larger than",
        ),
    ] {
        let r = upload(name, ctype, bytes, kind).await.unwrap();
        assert_eq!(r.status().as_u16(), 400, "{name}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{name}: {v}");
    }
    // The Instagram Login flavour has no such edge.
    let r = reqwest::Client::new()
        .post(format!("{base}/v21.0/{}/message_attachments", biz["ig_user_id"].as_str().unwrap()))
        .bearer_auth(biz["access_token"].as_str().unwrap())
        .json(&json!({"platform": "instagram"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
}
