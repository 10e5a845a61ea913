# ruff: noqa: E501  (the messages are kept exactly as the sample's files hold them)
"""The starter messages ``init`` writes into the 템플릿 tab: the shipped sample's
``templates/*.j2``, word for word (a test holds them equal), in the sample's field
names (``name``, ``course``, ``applied_at``, ``last_login``, ``missed``), which
``starter.py`` renames to the columns found.
"""

from __future__ import annotations

SOURCES: dict[str, str] = {
    'onboarding_welcome': '''\
{% block subject %}{{ name }}님, {{ course }} 수강을 환영합니다{% endblock %}
{% block text %}
{{ name }}님, 안녕하세요. 소담 클래스입니다.

{{ course }} 강의 결제가 확인되었어요. 아직 첫 강의를 열어보지 않으셨다면
가장 먼저 "1강 - 시작하기"(12분)를 들어보세요. 나머지 강의의 흐름이 한눈에 잡힙니다.

강의실 바로가기: https://class.example.com/my

궁금한 점은 이 메일에 답장해 주세요.
{% endblock %}
{% block html %}
<p>{{ name }}님, 안녕하세요. 소담 클래스입니다.</p>
<p><b>{{ course }}</b> 강의 결제가 확인되었어요. 가장 먼저 <b>1강 - 시작하기</b>(12분)를 들어보세요.</p>
<p><a href="https://class.example.com/my">강의실 바로가기</a></p>
{% endblock %}
''',
    'onboarding_guide': '''\
{% block subject %}{{ name }}님, 첫 강의가 막막하신가요?{% endblock %}
{% block text %}
{{ name }}님, 아직 첫 수강을 하지 않으셨다면 이런 정보가 도움이 될 수 있어요.

자주 묻는 질문
- 강의는 언제까지 들을 수 있나요? 결제일로부터 1년입니다.
- 모바일에서도 되나요? 네, 앱 설치 없이 브라우저에서 바로 됩니다.
- 실습 파일은 어디 있나요? 각 강의 하단 "자료" 탭에 있습니다.

수강 가이드: https://class.example.com/guide
{% endblock %}
''',
    'onboarding_offer': '''\
{% block subject %}{{ name }}님께만 드리는 1:1 질문권{% endblock %}
{% block text %}
{{ name }}님, 이번 주 안에 첫 강의를 들으시면 강사에게 직접 묻는 1:1 질문권을 드려요.

지금 시작하기: https://class.example.com/my

{% endblock %}
''',
    'payment_reminder': '''\
{% block subject %}{{ name }}님, {{ course }} 결제가 아직 완료되지 않았어요{% endblock %}
{% block text %}
{{ name }}님, {{ applied_at|kdate(weekday=False) }}에 신청하신 {{ course }} 결제가 아직 완료되지 않았어요.

결제 이어하기: https://class.example.com/checkout

신청 내용을 그대로 저장해 두었으니 위 링크에서 바로 이어서 진행하실 수 있어요.
{% endblock %}
''',
    'payment_reviews': '''\
{% block subject %}먼저 들은 수강생들의 {{ course }} 후기{% endblock %}
{% block text %}
{{ name }}님, 고민 중이시라면 먼저 들은 분들의 이야기를 들어보세요.

"실무에 바로 쓸 수 있는 예제가 많아서 좋았어요." - 3기 수강생
"짧은 강의로 나뉘어 있어 퇴근 후에도 부담이 없었어요." - 5기 수강생

평균 만족도 4.8 / 5 (후기 212개)
결제 이어하기: https://class.example.com/checkout

{% endblock %}
''',
    'payment_reviews.compare': '''\
{% block subject %}{{ course }}, 다른 강의와 비교해 보세요{% endblock %}
{% block text %}
{{ name }}님, 어떤 강의가 맞을지 고민 중이시라면 한눈에 비교해 보세요.

                  {{ course }}      일반 온라인 강의
실습 파일         전 강의 제공      일부
질문 답변         48시간 안에       없음
수강 기간         1년               3개월

결제 이어하기: https://class.example.com/checkout
{% endblock %}
''',
    'payment_last_call': '''\
{% block subject %}{{ name }}님, 신청 혜택이 오늘 마감돼요{% endblock %}
{% block text %}
{{ name }}님, {{ course }} 신청자 할인(10%)이 오늘 자정에 마감됩니다.

결제 이어하기: https://class.example.com/checkout

{% endblock %}
''',
    'dormant_last_activity': '''\
{% block subject %}{{ name }}님, {{ course }} 강의실이 그대로 기다리고 있어요{% endblock %}
{% block text %}
{{ name }}님, 마지막으로 {{ course }} 강의실에 들르신 지 꽤 되었어요.
{% if last_login %}
마지막 접속: {{ last_login|kdate }}
{% endif %}
멈춘 곳에서 바로 이어 들을 수 있도록 진도를 그대로 저장해 두었습니다.
이어 듣기: https://class.example.com/my
{% endblock %}
''',
    'dormant_offer': '''\
{% block subject %}{{ name }}님을 위한 복귀 혜택: 수강 기간 30일 연장{% endblock %}
{% block text %}
{{ name }}님, 다시 시작하시면 {{ course }} 수강 기간을 30일 연장해 드려요.
이번 주 안에 강의실에 들어오시면 자동으로 적용됩니다.

이어 듣기: https://class.example.com/my
{% endblock %}
''',
    'dormant_feedback': '''\
{% block subject %}{{ name }}님, 불편했던 점이 있었나요?{% endblock %}
{% block text %}
{{ name }}님, 그동안 보내드린 안내가 도움이 되지 않았다면 죄송합니다.

앞으로도 {{ course }} 강의를 이어서 들으실 생각이 있으신가요?
불편했던 점을 이 메일에 답장으로 알려주시면 다음 강의를 만드는 데 꼭 반영할게요.

더 이상 안내를 원하지 않으시면 "그만"이라고 답장해 주세요.
{% endblock %}
''',
    'churn_checkin': '''\
{% block subject %}{{ name }}님, 요즘 괜찮으신가요?{% endblock %}
{% block text %}
{{ name }}님, 한동안 강의실에서 뵙지 못했어요.
{% if missed and missed >= 2 %}
밀린 과제가 {{ missed }}개 있어요. 마감은 신경 쓰지 마시고 편할 때 제출해 주세요.
{% endif %}
지난 강의를 5분으로 정리한 리마인드 영상을 준비했어요.
https://class.example.com/recap

바쁘셨다면 이 메일에 답장으로 일정을 알려주세요. 수강 기간 연장을 도와드릴게요.
{% endblock %}
''',
    'churn_summary': '''\
{% block subject %}{{ name }}님, 중요한 내용을 놓치셨을 수 있어요{% endblock %}
{% block text %}
{{ name }}님, {{ course }}의 핵심만 모은 요약본 PDF를 보내드려요.

요약본 받기: https://class.example.com/summary.pdf

다시 시작하기 가장 좋은 곳은 지난번에 멈춘 강의입니다.
{% endblock %}
''',
    'review_request': '''\
{% block subject %}{{ name }}님, {{ course|josa("은/는") }} 어떠셨나요?{% endblock %}
{% block text %}
{{ name }}님, {{ course|josa("을/를") }} 들어주셔서 고맙습니다.

다음 수강생들이 결정을 내리는 데 {{ name }}님의 한 줄 후기가 큰 도움이 돼요.
후기 남기기 (1분): https://class.example.com/review
{% endblock %}
''',
    'review_reward': '''\
{% block subject %}후기를 남기시면 다음 강의 15% 할인{% endblock %}
{% block text %}
{{ name }}님, 후기를 남겨주시면 다음 강의에 쓸 수 있는 15% 할인 쿠폰을 드려요.

후기 남기기: https://class.example.com/review

{% endblock %}
''',
}
