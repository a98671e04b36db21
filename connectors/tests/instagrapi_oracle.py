"""Reads private-API thread bodies (JSON list on stdin: {"kind": "thread"|"inbox", "body": ...})
and prints what instagrapi's extractors make of each item and thread, as JSON on stdout."""
import json
import sys
import traceback

from instagrapi.extractors import extract_direct_message, extract_direct_thread


def where(e):
    frame = traceback.extract_tb(e.__traceback__)[-1]
    return f"{type(e).__name__} at {frame.name}:{frame.lineno}: {e}"


def seconds(dt):
    # instagrapi keeps whole seconds as a naive local datetime; timestamp() undoes the local shift.
    return int(dt.replace(microsecond=0).timestamp())


def message(tid, raw):
    try:
        m = extract_direct_message(json.loads(json.dumps(raw)))
    except Exception as e:  # a body instagrapi's model rejects
        return {"thread_id": tid, "item_id": raw.get("item_id"), "error": where(e)}
    urls = []
    if m.media is not None:
        urls += [str(u) for u in (m.media.thumbnail_url, m.media.video_url, m.media.audio_url) if u]
    if m.visual_media is not None:
        vm = m.visual_media.media
        if vm.image_versions2 and vm.image_versions2.candidates:
            urls.append(max(vm.image_versions2.candidates, key=lambda c: c.width * c.height).url)
        if vm.video_versions:
            urls.append(max(vm.video_versions, key=lambda v: v.width * v.height).url)
    reactions = []
    if m.reactions and m.reactions.emojis:
        reactions = sorted([str(r.sender_id), r.emoji] for r in m.reactions.emojis)
    return {
        "thread_id": tid,
        "item_id": m.id,
        "user_id": m.user_id,
        "seconds": seconds(m.timestamp),
        "item_type": m.item_type,
        "text": m.text,
        "link_text": m.link.text if m.link is not None else None,
        "media_urls": urls,
        "reactions": reactions,
        "reply_id": m.reply.id if m.reply is not None else None,
    }


def thread(raw):
    try:
        t = extract_direct_thread(json.loads(json.dumps(raw)))
    except Exception as e:
        return {"thread_id": raw.get("thread_id"), "error": where(e)}
    seen = {}
    for uid, s in (raw.get("last_seen_at") or {}).items():
        seen[str(uid)] = str(s.get("item_id"))
    return {
        "thread_id": t.id,
        "user_ids": sorted(str(u.pk) for u in t.users),
        "item_ids": [m.id for m in t.messages],
        "seen": seen,
    }


out = {"messages": [], "threads": []}
for entry in json.load(sys.stdin):
    body = entry["body"]
    threads = body["inbox"]["threads"] if entry["kind"] == "inbox" else [body["thread"]]
    for t in threads:
        out["threads"].append(thread(t))
        for it in t.get("items", []):
            out["messages"].append(message(str(t.get("thread_id")), it))
json.dump(out, sys.stdout)
