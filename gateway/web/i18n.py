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
