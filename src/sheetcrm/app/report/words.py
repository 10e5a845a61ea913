"""Every word the report shows, in one place: Korean (the HTML report and the sheet tab,
by default) and English (the terminal, and ``[report] language = "en"``).

Both catalogs have the same keys (a test holds them to it), so translating the report
into another language is adding one dict; numbers are formatted here too (``12.5%``,
``+16.7%p``), since their units are words as well. ``Words(lang)(key, **values)`` gives
a sentence. Korean particles that depend on the last sound of a name (``B가``, ``A/B
테스트 변형 plan이``) are chosen by ``josa``.
"""

from __future__ import annotations

from sheetcrm.app.report.model import OPENS_UNRELIABLE

KO: dict[str, str] = {
    "title": "sheetcrm 리포트",
    "tab": "sheetcrm 리포트",
    "col.flow": "흐름",
    "col.group": "그룹",
    "col.customers": "고객 수",
    "col.converted": "전환 수",
    "col.rate": "전환율",
    "col.interval": "95% 구간",
    "col.verdict": "판정",
    "as_of": "{when} 기준",
    "scope_all": "전체 기간의 모든 고객",
    "scope_since": "{since} 이후 흐름에 들어온 고객",
    "scope_flow": "흐름 {flow}만",
    "nothing": "아직 기록이 없습니다. sync를 실행하면 채워집니다.",
    "flow": "흐름 {flow}",
    "funnel": "퍼널: 진입부터 결과까지",
    "entered": "진입",
    "step_sent": "{n}단계 발송",
    "converted": "전환",
    "left": "조건 해제로 이탈",
    "finished": "끝까지 받고 종료",
    "replied": "답장으로 종료",
    "failed": "발송 실패",
    "active": "진행 중",
    "customers": "{n}명",
    "time_to_convert": "전환까지 걸린 시간",
    "median_days": "중앙값 {days}일 ({n}명)",
    "days": "{n}일",
    "days_more": "{n}일+",
    "no_conversion": "아직 전환한 고객이 없습니다.",
    "no_goal": "목표(goal)가 없는 흐름이라 전환율은 재지 않습니다.",
    "lift": "대조군 대비 효과",
    "messaged": "메시지 받은 고객",
    "holdout": "대조군",
    "difference": "차이",
    "lift_helped": "메시지가 전환율을 높였습니다: {diff} (95% 구간 {low} ~ {high}).",
    "lift_hurt": "메시지 받은 고객의 전환율이 더 낮습니다: {diff} (95% 구간 {low} ~ {high}).",
    "lift_too_early": ("메시지에 효과가 있다고 보기에는 아직 표본이 부족합니다: "
                       "{diff} (95% 구간 {low} ~ {high})."),
    "lift_no_holdout": "대조군이 없어 메시지의 효과를 잴 수 없습니다.",
    "sizes": "메시지 받은 고객 {treated}명 · 대조군 {holdout}명",
    "small_holdout": ("대조군이 {n}명뿐입니다: 효과의 크기를 말하기에는 너무 적습니다 "
                      "(구간이 넓습니다)."),
    "no_holdout_configured": ("대조군(holdout)이 없어 메시지 덕분에 전환했는지 알 수 없습니다: "
                              "[flows.{flow}] holdout = 0.1 처럼 일부를 남겨 두세요."),
    "no_holdout_in_tab": ("대조군이 없어 메시지 덕분에 전환했는지 알 수 없습니다: {tab} 탭의 "
                          "흐름 {flow} 첫 줄 대조군 비율 칸에 10%처럼 적어 일부를 남겨 두세요."),
    "ab": "A/B 테스트: {step}단계",
    "ab_better": ("{leader}{leader_ga} {other}보다 낫습니다: 전환율 차이 {diff} "
                  "(95% 구간 {low} ~ {high}, 피셔 정확검정 p = {p})."),
    "ab_too_early": ("{leader}{leader_ga} 낫다고 보기에는 아직 표본이 부족합니다 "
                     "(피셔 정확검정 p = {p})."),
    "ab_tied": "아직 어느 변형이 낫다고 말할 수 없습니다: 표본이 부족합니다.",
    "ab_no_data": "아직 모든 변형이 발송되지 않았습니다.",
    "of_converted": "{customers}명 중 {converted}명 전환",
    "heard": "고객 반응 (단계·변형별, 발송 대비)",
    "step": "단계",
    "sent": "발송",
    "clicked": "클릭",
    "replied_count": "답장",
    "opted_out": "수신 거부",
    "bounced": "반송",
    "automatic": "자동 접속 (제외)",
    "nothing_heard": "아직 클릭, 답장, 수신 거부, 반송이 없습니다.",
    "opens": "열람 (신뢰할 수 없음)",
    "opens_note": ("이미지 프록시와 Apple 메일 개인정보 보호는 아무도 읽지 않은 메일도 열기 때문에 "
                   "열람 수는 부풀려집니다. 판단에 쓰지 마세요."),
    "opened": "열람",
    "deliveries": "문자·알림톡 전달 (서비스 업체의 전달 결과)",
    "delivered": "전달됨",
    "not_delivered": "미전달",
    "awaiting_report": "결과 대기",
    "daily": "일별 발송 (채널·종류별)",
    "held": "보류된 발송 (사유별)",
    "held_note": ("영구히 건너뛴 발송은 그날 기록된 수, 미뤄진 발송(야간, 빈도 제한 등)은 "
                  "그날 가장 많았던 실행의 수입니다."),
    "held_note_flow": "흐름 하나를 볼 때는 영구히 건너뛴 발송만 보입니다.",
    "held.holdout": "대조군",
    "held.no_consent": "수신 동의 없음",
    "held.opted_out": "수신 거부",
    "held.bounced": "반송된 주소",
    "held.paused": "발송 중지",
    "held.no_recipient": "받는 주소 없음",
    "held.quiet_hours": "야간 광고 금지 시간",
    "held.holiday": "공휴일",
    "held.frequency_cap": "발송 빈도 제한",
    "held.blast_radius": "대량 발송 차단",
    "held.flow_change": "흐름 변경 확인 대기",
    "held.already_recorded": "이미 기록됨",
    "held.other": "기타",
    "kind.ad": "광고",
    "kind.transactional": "안내",
    "revenue": "매출 ({field})",
    "revenue_converted": "전환한 고객의 합계",
    "revenue_per_messaged": "메시지 받은 고객 1명당",
    "revenue_per_holdout": "대조군 1명당",
    "revenue_note": ("시트의 지금 값으로 계산했습니다. 여러 흐름에서 전환한 고객은 "
                     "흐름마다 더해집니다."),
    "money": "{amount}원",
    "methods": ("전환율의 95% 구간은 윌슨 점수 구간, 대조군 대비 차이의 구간은 뉴컴 구간, "
                "A/B 판정은 피셔 정확검정(양측, p < 0.05)입니다. 매일 결과를 보다가 좋아 보일 때 "
                "멈추면 우연을 효과로 착각하기 쉽습니다: 미리 정한 기간이 끝난 뒤에 판단하세요."),
    "no_chart_data": "아직 표시할 데이터가 없습니다.",
    "none": "없음",
    "pct": "{value}%",
    "points": "{value}%p",
}

EN: dict[str, str] = {
    "title": "sheetcrm report",
    "tab": "sheetcrm report",
    "col.flow": "flow",
    "col.group": "group",
    "col.customers": "customers",
    "col.converted": "converted",
    "col.rate": "rate",
    "col.interval": "95% interval",
    "col.verdict": "verdict",
    "as_of": "as of {when}",
    "scope_all": "all customers, all time",
    "scope_since": "customers who entered a flow since {since}",
    "scope_flow": "flow {flow} only",
    "nothing": "nothing recorded yet: run sync first",
    "flow": "flow {flow}",
    "funnel": "funnel: from entry to outcome",
    "entered": "entered",
    "step_sent": "step {n} sent",
    "converted": "converted",
    "left": "left (trigger no longer true)",
    "finished": "finished without converting",
    "replied": "ended by a reply",
    "failed": "send failed",
    "active": "still in the flow",
    "customers": "{n}",
    "time_to_convert": "time to conversion",
    "median_days": "median {days} days ({n} customers)",
    "days": "{n}d",
    "days_more": "{n}d+",
    "no_conversion": "no customer has converted yet",
    "no_goal": "this flow has no goal: there is no conversion to measure",
    "lift": "lift over holdout",
    "messaged": "messaged",
    "holdout": "holdout",
    "difference": "difference",
    "lift_helped": "the messages raised conversion: {diff} (95% interval {low} to {high})",
    "lift_hurt": ("messaged customers converted less: {diff} "
                  "(95% interval {low} to {high})"),
    "lift_too_early": ("too early to say the messages work: {diff} "
                       "(95% interval {low} to {high})"),
    "lift_no_holdout": "no holdout: the messages' effect cannot be measured",
    "sizes": "{treated} messaged · {holdout} in the holdout",
    "small_holdout": ("the holdout has only {n} customer(s): too few to say how large the "
                      "effect is (the interval is wide)"),
    "no_holdout_configured": ("no holdout: whether customers converted because of the "
                              "messages cannot be told; keep some back with "
                              "[flows.{flow}] holdout = 0.1"),
    "no_holdout_in_tab": ("no holdout: whether customers converted because of the "
                          "messages cannot be told; keep some back: write a share like 10% "
                          "in the 대조군 비율 column on the first row of flow {flow} in the "
                          "{tab} tab"),
    "ab": "A/B test: step {step}",
    "ab_better": ("{leader} is better than {other}: {diff} (95% interval {low} to {high}, "
                  "Fisher's exact test p = {p})"),
    "ab_too_early": ("too early to say {leader} is better: the sample is still too small "
                     "(Fisher's exact test p = {p})"),
    "ab_tied": "too early: no variant is ahead yet",
    "ab_no_data": "not every variant has been sent yet",
    "of_converted": "{converted} of {customers} converted",
    "heard": "what came back",
    "step": "step",
    "sent": "sent",
    "clicked": "clicked",
    "replied_count": "replied",
    "opted_out": "opted out",
    "bounced": "bounced",
    "automatic": "automatic hits (not counted)",
    "nothing_heard": "no click, reply, opt-out or bounce yet",
    "opens": f"opens ({OPENS_UNRELIABLE})",
    "opens_note": ("image proxies and Apple Mail Privacy Protection open mail nobody read: "
                   "open counts are inflated; do not decide on them"),
    "opened": "opened",
    "deliveries": "text messages delivered, as their providers reported",
    "delivered": "delivered",
    "not_delivered": "not delivered",
    "awaiting_report": "awaiting report",
    "daily": "messages per day by channel and kind",
    "held": "held-back sends by reason",
    "held_note": ("steps skipped for good count on the day they were recorded; deferred "
                  "sends (quiet hours, the frequency cap, ...) as the day's busiest run"),
    "held_note_flow": "for one flow, only the steps skipped for good are shown",
    "held.holdout": "holdout",
    "held.no_consent": "no consent",
    "held.opted_out": "opted out",
    "held.bounced": "address bounced",
    "held.paused": "paused",
    "held.no_recipient": "no recipient",
    "held.quiet_hours": "quiet hours",
    "held.holiday": "public holiday",
    "held.frequency_cap": "frequency cap",
    "held.blast_radius": "blast-radius stop",
    "held.flow_change": "flow change to confirm",
    "held.already_recorded": "already recorded",
    "held.other": "other",
    "kind.ad": "ad",
    "kind.transactional": "transactional",
    "revenue": "revenue ({field})",
    "revenue_converted": "converted customers' total",
    "revenue_per_messaged": "per messaged customer",
    "revenue_per_holdout": "per holdout customer",
    "revenue_note": ("from the sheet's values now; a customer who converted in several "
                     "flows counts in each"),
    "money": "{amount}",
    "methods": ("rates: Wilson score 95% intervals; lift over the holdout: Newcombe's "
                "interval; A/B: Fisher's exact test (two-sided, p < 0.05). Looking every day "
                "and stopping when it looks good turns chance into an effect: decide when the "
                "period you chose is over."),
    "no_chart_data": "nothing to show yet",
    "none": "none",
    "pct": "{value}%",
    "points": "{value} pt",
}

CATALOGS = {"ko": KO, "en": EN}


def josa(word: str, with_final: str, without: str) -> str:
    """The Korean particle after ``word``: ``with_final`` (이) after a final consonant,
    ``without`` (가) otherwise. Latin letters and digits are read as Koreans read them
    (``B`` 비 → 가, ``L`` 엘 → 이, ``3`` 삼 → 이)."""
    last = word.rstrip()[-1:] or " "
    if "가" <= last <= "힣":
        return with_final if (ord(last) - ord("가")) % 28 else without
    if last.isdigit():
        return with_final if last in "013678" else without
    lower = last.lower()
    if len(word.strip()) == 1:
        return with_final if lower in "lmnr" else without
    return with_final if lower in "lmn" or word.lower().endswith("ng") else without


class Words:
    """The catalog of one language, and its number formats."""

    def __init__(self, language: str) -> None:
        self.language = language
        self.catalog = CATALOGS[language]

    def __call__(self, key: str, **values: object) -> str:
        return self.catalog[key].format(**values)

    def pct(self, fraction: float | None) -> str:
        """``0.125`` -> ``12.5%``; None -> ``–``."""
        if fraction is None:
            return "–"
        return self("pct", value=f"{fraction * 100:.1f}".removesuffix(".0"))

    def points(self, fraction: float | None) -> str:
        """A difference of rates: ``0.167`` -> ``+16.7%p`` (``+16.7 pt`` in English)."""
        if fraction is None:
            return "–"
        return self("points", value=f"{fraction * 100:+.1f}")

    def p_value(self, p: float | None) -> str:
        if p is None:
            return "–"
        return "< 0.001" if p < 0.001 else f"{p:.3f}"

    def money(self, amount: float | None) -> str:
        if amount is None:
            return "–"
        return self("money", amount=f"{amount:,.0f}")

    def particle(self, word: str) -> str:
        """이/가 after ``word`` in Korean; nothing in other languages."""
        return josa(word, "이", "가") if self.language == "ko" else ""
