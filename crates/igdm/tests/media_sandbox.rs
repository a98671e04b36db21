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
