"""Dashboard labels in Japanese and English, from one table.

Every label a template shows is a key here with both texts (a test checks that each language has the same
keys). Templates call ``t("key")``; code calls ``translate(lang, "key")``. The language is the ``gw_lang``
cookie (set by ``/dashboard/lang/{code}``), else the first supported one in ``Accept-Language``, else Japanese.
"""

from __future__ import annotations

from starlette.requests import Request

DEFAULT = "ja"
COOKIE = "gw_lang"

# key: (日本語, English)
_TABLE: dict[str, tuple[str, str]] = {
    "app.title": ("港湾EDIゲートウェイ", "Port EDI gateway"),
    "nav.overview": ("概要", "Overview"),
    "nav.messages": ("メッセージ", "Messages"),
    "nav.deliveries": ("配信", "Deliveries"),
    "nav.deals": ("取引", "Deals"),
    "nav.audit": ("監査ログ", "Audit log"),
    "lang.ja": ("日本語", "日本語"),
    "lang.en": ("English", "English"),
    "lang.switch": ("言語", "Language"),
    "login.title": ("ログイン", "Log in"),
    "login.name": ("ログイン名", "Login name"),
    "login.password": ("パスワード", "Password"),
    "login.submit": ("ログイン", "Log in"),
    "login.failed": ("ログイン名またはパスワードが正しくありません。", "Wrong login name or password."),
    "login.limited": (
        "ログインの失敗が多すぎます。しばらくしてから再度お試しください。",
        "Too many failed logins. Try again later.",
    ),
    "logout": ("ログアウト", "Log out"),
    "user.role": ("権限", "Role"),
    "user.partner": ("取引先", "Partner"),
    "role.viewer": ("閲覧者", "Viewer"),
    "role.operator": ("オペレーター", "Operator"),
    "role.admin": ("管理者", "Administrator"),
    "overview.title": ("概要", "Overview"),
    "overview.by_status": ("ステータス別メッセージ数", "Messages by status"),
    "overview.by_channel": ("チャネル・ステータス別メッセージ数", "Messages by channel and status"),
    "overview.dead": ("デッド配信", "Dead deliveries"),
    "overview.none": ("メッセージはまだありません。", "No messages yet."),
    "col.channel": ("チャネル", "Channel"),
    "col.status": ("ステータス", "Status"),
    "col.count": ("件数", "Count"),
    "col.total": ("合計", "Total"),
    "col.when": ("日時", "When"),
    "col.user": ("ユーザー", "User"),
    "col.action": ("操作", "Action"),
    "col.target": ("対象", "Target"),
    "col.detail": ("詳細", "Detail"),
    "status.received": ("受信済", "received"),
    "status.parsed": ("解析済", "parsed"),
    "status.mapped": ("変換済", "mapped"),
    "status.done": ("完了", "done"),
    "status.failed": ("失敗", "failed"),
    "status.duplicate": ("重複", "duplicate"),
    "status.rendered": ("生成済", "rendered"),
    "status.sent": ("送信済", "sent"),
    "audit.title": ("監査ログ", "Audit log"),
    "audit.empty": ("記録はありません。", "Nothing recorded."),
    "page.older": ("さらに古い記録", "Older"),
    "error.forbidden": ("この操作の権限がありません。", "You are not allowed to do this."),
    "error.csrf": (
        "フォームの有効期限が切れています。ページを再読み込みしてください。",
        "The form has expired or did not come from this site. Reload the page.",
    ),
    "error.title": ("エラー", "Error"),
    "error.back": ("概要へ戻る", "Back to the overview"),
    # messages and deliveries pages (gateway/web/dashboard/messages.py, deliveries.py)
    "status.discarded": ("破棄", "discarded"),
    "msg.title": ("メッセージ", "Messages"),
    "msg.one": ("メッセージ", "Message"),
    "msg.any": ("すべて", "Any"),
    "msg.direction": ("方向", "Direction"),
    "msg.in": ("受信", "Inbound"),
    "msg.out": ("送信", "Outbound"),
    "msg.type": ("電文種別", "Message type"),
    "msg.format": ("形式", "Format"),
    "msg.size": ("サイズ", "Size"),
    "msg.file": ("ファイル", "File"),
    "msg.error": ("エラー", "Error"),
    "msg.error_code": ("エラーコード", "Error code"),
    "msg.from": ("開始日", "From"),
    "msg.to": ("終了日", "To"),
    "msg.reference": ("B/L・ブッキング・コンテナ番号", "B/L, booking or container no."),
    "msg.search": ("電文内検索", "Search in payloads"),
    "msg.search_scope": (
        "電文内検索は、条件に合う新しい順のメッセージの範囲内だけを対象にします",
        "The payload search looks only through this many of the newest messages that pass the filters",
    ),
    "msg.apply": ("絞り込み", "Filter"),
    "msg.none": ("条件に合うメッセージはありません。", "No messages match."),
    "msg.reason": ("理由", "Reason"),
    "msg.step": ("処理段階", "Step"),
    "msg.segment": ("セグメント", "Segment"),
    "msg.payload": ("電文", "Payload"),
    "msg.payload_cut": (
        "大きすぎるため先頭部分のみをテキストで表示しています。",
        "Too large: the start is shown as text.",
    ),
    "msg.payload_unreadable": ("解析できないためテキストで表示しています。", "Cannot be read: shown as text."),
    "msg.steps": ("処理の経過", "Processing steps"),
    "msg.touched": ("関連する取引とコンテナ", "Deals and containers touched"),
    "msg.touched_none": ("このメッセージが更新した取引はありません。", "This message touched no deal."),
    "msg.deal": ("取引", "Deal"),
    "msg.booking": ("ブッキング", "Booking"),
    "msg.container": ("コンテナ", "Container"),
    "msg.event": ("イベント", "Event"),
    "msg.delivery": ("配信", "Delivery"),
    "msg.lineage": ("経緯", "Lineage"),
    "msg.duplicate_of": ("重複元", "Duplicate of"),
    "msg.duplicated_by": ("重複して受信", "Received again as"),
    "msg.resubmitted_from": ("修正元", "Edited copy of"),
    "msg.resubmitted_as": ("修正して再投入", "Edited and resubmitted as"),
    "msg.reprocessed": ("再処理", "Reprocessed"),
    "msg.replays": ("は再送:", "replays"),
    "msg.reference_sent": ("参照番号・引継情報", "Reference / hand-over"),
    "msg.edit": ("修正して再投入", "Edit and resubmit"),
    "msg.edit_hint": (
        "修正した電文は新しいメッセージとして受信・処理されます。元のメッセージはそのまま残ります。",
        "The edited text is stored and processed as a new message; the original stays as it is.",
    ),
    "action.reprocess": ("再処理", "Reprocess"),
    "action.discard": ("破棄", "Discard"),
    "action.replay": ("再送", "Replay"),
    "action.resubmit": ("再投入", "Resubmit"),
    "bulk.on_filter": ("この条件の失敗メッセージすべてに", "Every failed message of this filter"),
    "bulk.dead_on_filter": ("この条件のデッド配信すべてを", "Every dead delivery of this filter"),
    "bulk.max": ("最大", "at most"),
    "bulk.confirm_title": ("一括操作の確認", "Confirm the bulk action"),
    "bulk.messages": ("件のメッセージ", "messages"),
    "bulk.deliveries": ("件の配信", "deliveries"),
    "bulk.confirm": ("実行する", "Do it"),
    "bulk.cancel": ("やめる", "Cancel"),
    "bulk.done": ("一括操作を実行しました", "Bulk action done"),
    "dlv.title": ("配信", "Deliveries"),
    "dlv.route": ("ルート", "Route"),
    "dlv.attempts": ("試行", "Attempts"),
    "dlv.message": ("送信メッセージ", "Sent message"),
    "dlv.replay_of": ("再送元", "Replay of"),
    "dlv.none": ("該当する配信はありません。", "No deliveries."),
    "dlv.status.pending": ("待機中", "pending"),
    "dlv.status.sending": ("送信中", "sending"),
    "dlv.status.done": ("完了", "done"),
    "dlv.status.dead": ("デッド", "dead"),
    "dlv.status.held": ("保留", "held"),
    # overview (chart, queues, oldest failure) and deals
    "overview.window": ("集計期間", "Window"),
    "overview.refresh": ("自動更新", "Refresh every"),
    "overview.updated": ("最終更新", "Updated"),
    "overview.chart": ("時間別・ステータス別メッセージ数", "Messages per hour by status"),
    "overview.oldest_failure": ("未解決の最古の失敗", "Oldest unresolved failure"),
    "overview.no_failure": ("未解決の失敗はありません。", "No unresolved failure."),
    "overview.queues": ("滞留キュー", "Queues backing up"),
    "overview.waiting": ("未処理", "Waiting"),
    "overview.lag": ("最古の待ち時間", "Oldest waits"),
    "overview.route": ("ルート", "Route"),
    "overview.pending": ("待機中", "Pending"),
    "overview.sending": ("送信中", "Sending"),
    "overview.held": ("保留", "Held"),
    "chart.all": ("すべて", "All"),
    "deals.title": ("取引", "Deals"),
    "deals.deal": ("取引", "Deal"),
    "deals.search": ("検索", "Search"),
    "deals.search_hint": ("取引番号・B/L・ブッキング・コンテナ番号", "Deal, B/L, booking or container number"),
    "deals.search_button": ("検索", "Search"),
    "deals.none": ("該当する取引はありません。", "No deals found."),
    "deals.not_found": ("この取引は存在しないか、閲覧できません。", "This deal does not exist or is not yours."),
    "deals.number": ("取引番号", "Deal number"),
    "deals.direction": ("輸出入", "Direction"),
    "deals.dir.export": ("輸出", "Export"),
    "deals.dir.import": ("輸入", "Import"),
    "deals.bl": ("B/L番号", "B/L number"),
    "deals.booking": ("ブッキング番号", "Booking number"),
    "deals.carrier": ("船会社", "Carrier"),
    "deals.customs": ("通関", "Customs"),
    "deals.containers": ("コンテナ", "Containers"),
    "deals.updated": ("更新日時", "Updated"),
    "deals.forms": ("帳票", "Forms"),
    "deals.form_type": ("帳票種別", "Form"),
    "deals.subject": ("対象", "Subject"),
    "deals.version": ("版", "Version"),
    "deals.payload": ("内容", "Contents"),
    "deals.no_forms": ("閲覧できる帳票はありません。", "No forms you may read."),
    "deals.hidden_forms": ("権限がなく表示されない帳票", "Forms hidden (no rights)"),
    "deals.container": ("コンテナ番号", "Container"),
    "deals.size_type": ("サイズ・タイプ", "Size/type"),
    "deals.full_empty": ("実入/空", "Full/empty"),
    "deals.status": ("状態", "Status"),
    "deals.location": ("場所", "Location"),
    "deals.conpas": ("CONPAS照合結果", "CONPAS result"),
    "deals.no_containers": ("コンテナはありません。", "No containers."),
    "deals.timeline": ("タイムライン", "Timeline"),
    "deals.event": ("イベント", "Event"),
    "deals.message": ("メッセージ", "Message"),
    "deals.superseded": ("より新しい情報あり", "superseded"),
    "deals.participants": ("参加者と帳票ごとの権限", "Participants and their rights per form"),
    "deals.business_type": ("業種", "Business type"),
    "right.Read": ("参照", "Read"),
    "right.ReadWrite": ("参照・更新", "ReadWrite"),
    "right.none": ("－", "–"),
}

LANGUAGES = ("ja", "en")
LABELS: dict[str, dict[str, str]] = {
    lang: {key: texts[i] for key, texts in _TABLE.items()} for i, lang in enumerate(LANGUAGES)
}


def translate(lang: str, key: str) -> str:
    """The label, or the key itself when it is missing (visible on the page, and caught by the tests)."""
    return LABELS.get(lang, LABELS[DEFAULT]).get(key, key)


def language(request: Request) -> str:
    cookie = request.cookies.get(COOKIE)
    if cookie in LANGUAGES:
        return cookie
    for part in request.headers.get("accept-language", "").split(","):
        code = part.split(";")[0].strip().lower()[:2]
        if code in LANGUAGES:
            return code
    return DEFAULT
