"""Text as the index and queries compare it: normalisation, grams, pinyin, fillers, one-edit matching."""

from __future__ import annotations

import functools
import itertools
import re
import threading
import unicodedata
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import jieba

MAX_QUERY_CHARS = 100

# Everyday filler around what people want; stripped in a second variant of the query.
FILLERS = sorted(
    [
        "需要什么材料",
        "需要哪些材料",
        "要什么材料",
        "要办什么证",
        "办什么证",
        "需要什么",
        "需要的材料",
        "要哪些材料",
        "哪些材料",
        "什么材料",
        "怎么办理",
        "怎么办",
        "如何办理",
        "如何",
        "怎么",
        "怎样",
        "在哪里办",
        "在哪里",
        "在哪办",
        "去哪里",
        "哪里",
        "在哪",
        "我要",
        "我想",
        "想要",
        "办理",
        "申请",
        "手续",
        "流程",
        "多少钱",
        # How a question is asked, not what it is about (general interrogatives and conditions words;
        # no item name holds them except 条件 / 要求 / 程序 / 需要 in a handful, and a query is always
        # matched as typed too).
        "有哪些",
        "有什么",
        "是什么",
        "什么",
        "哪些",
        "能不能",
        "能否",
        "是否",
        "可以",
        "多长时间",
        "多久",
        "去哪儿",
        "哪儿",
        "去哪",
        "找谁",
        "哪个部门",
        # Which office or level does it ("到哪级水行政部门办理"): no item name holds 部门.
        "到哪级",
        "哪一级",
        "哪级",
        "行政部门",
        "主管部门",
        "部门",
        "要满足",
        "满足",
        "要求",
        "条件",
        "程序",
        "需要",
        "要多久",
        # How people talk when they ask (greetings, 咋 for 怎么, 弄/搞 for 办): never what a service is.
        "请问一下",
        "请问",
        "你好",
        "您好",
        "谢谢",
        "麻烦问下",
        "问一下",
        "问下",
        "怎么弄",
        "怎么搞",
        "咋弄",
        "咋办",
        "咋",
        "什么地方",
        "哪个地方",
        "到哪里",
        "到哪",
        "怎么样",
        "的",
        "办",
        "了",
        "吗",
        "么",
        "呢",
    ],
    key=len,
    reverse=True,
)

FILLER_WORDS = frozenset(FILLERS)

# Words nearly every item name holds (the kind of act, not what it is about): a query that shares only
# these with a name is not a partial answer ("比特币挖矿许可" must not list every 许可).
GENERIC_WORDS = frozenset(
    {
        "许可",
        "许可证",
        "审批",
        "核发",
        "登记",
        "备案",
        "申请",
        "申领",
        "申报",
        "办理",
        "变更",
        "注销",
        "延续",
        "补办",
        "新办",
        "换发",
        "认定",
        "确认",
        "审核",
        "审查",
        "证明",
        "服务",
        "管理",
        "证书",
        "证照",
        "执照",
        # What a question asks to bring, not what it is about (办理护照需要什么证件).
        "证件",
        "材料",
        "资料",
    }
)

# Acts that follow a first one (closing, changing, renewing, replacing a licence or a registration).
# A citizen who names none of them most often wants to start something: names holding one rank a
# point below the otherwise equal names (想开个小店营业执照 -> 个体工商户设立登记 before its 注销登记).
FOLLOW_UP_ACTS = (
    "注销",
    "撤销",
    "停业",
    "歇业",
    "变更",
    "延续",
    "续期",
    "补领",
    "补发",
    "补办",
    "补证",
    "补换",
    "换领",
    "换发",
    "换证",
    "挂失",
    "遗失",
    "迁出",
    "转出",
)
# Characters by which a query names such an act itself (补办, 换个证, 丢了, 改名字, 续期).
_FOLLOW_UP_CHARS = frozenset("销停变延续补换挂失丢改迁转撤")


def follow_up_act(text: str) -> bool:
    """Whether a normalised name is about an act that follows a first one (``FOLLOW_UP_ACTS``)."""
    return any(w in text for w in FOLLOW_UP_ACTS)


def asks_follow_up(query: str) -> bool:
    """Whether a query names a closing, changing, renewing or replacing act itself."""
    return any(ch in _FOLLOW_UP_CHARS for ch in query)


# The everyday verbs citizens ask with, and the acts the catalogue names for them: one 开 a shop and the
# catalogue 设立s it, one 领 a benefit and it is 申领 / 领取 / 发放, one 交 social insurance and it is
# 缴费 / 参保, one 考 a licence through its 考试 / 考核, one 报销 a bill through its 支付 / 结算. A query
# says the verb, never the act word, so the act cannot be matched; it only tells, of names that hold
# the same words, which one does what was asked (``asked_acts``). Verbs are dictionary words of the
# query; single characters count only when the segmenter leaves them alone (开 公司, not 开 of 开发).
_REPLACE = ("补领", "补发", "补办", "补证", "补换", "遗失", "挂失")
_RENEW = ("延续", "续期", "换领", "换发", "换证", "期满")
_EXCHANGE = ("换领", "换发", "补换", "换证")
CITIZEN_ACTS: dict[str, tuple[str, ...]] = {
    "开": ("设立", "开办", "筹建"),
    "开店": ("设立", "开办"),
    "创办": ("设立", "开办"),
    "开业": ("设立", "开办"),
    "注册": ("设立",),
    "领": ("申领", "领取", "发放"),
    "领取": ("申领", "领取", "发放"),
    "拿": ("申领", "领取", "发放"),
    "交": ("缴费", "缴纳", "缴存", "参保"),
    "缴": ("缴费", "缴纳", "缴存", "参保"),
    "缴费": ("缴费", "缴纳", "缴存", "参保"),
    "买": ("缴费", "参保", "购买"),
    "考": ("考试", "考核"),
    "考试": ("考试", "考核"),
    "报销": ("支付", "结算", "报销"),
    "报": ("申报", "报销"),
    "查": ("查询",),
    "查询": ("查询",),
    "退": ("退费", "退还", "退付"),
    "租": ("租赁",),
    "卖": ("经营", "销售"),
    "建": ("建设", "施工"),
    "盖": ("建设", "施工"),
    "拆": ("拆除",),
    "砍": ("采伐",),
    "迁": ("迁移", "迁入"),
    "转": ("转移", "转入", "转接"),
    # Lost, broken or run out: what is asked is the replacement or the renewal (结婚证丢了 -> 补领).
    "丢": _REPLACE,
    "弄丢": _REPLACE,
    "丢失": _REPLACE,
    "遗失": _REPLACE,
    "坏": _EXCHANGE,
    "换": _EXCHANGE,
    "换新": _EXCHANGE,
    "过期": _RENEW,
    "到期": _RENEW,
}


def asked_acts(query: str) -> tuple[str, ...]:
    """The catalogue's act words for the everyday verbs of a query (``CITIZEN_ACTS``), in order."""
    acts: list[str] = []
    for part in query.split():
        if not has_cjk(part):
            continue
        for w in segment(part):
            acts += CITIZEN_ACTS.get(w, ())
    return tuple(dict.fromkeys(acts))


_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN = re.compile(r"^[a-z]+$")


def normalize_text(text: str) -> str:
    """NFKC, lower case, control characters dropped: what both index and queries are compared in."""
    text = unicodedata.normalize("NFKC", text or "").lower()
    return "".join(ch for ch in text if not unicodedata.category(ch).startswith("C"))


def normalize_query(raw: str | None) -> str:
    """The query as matched: normalised, punctuation to spaces, whitespace collapsed, bounded."""
    text = normalize_text(raw or "")[: MAX_QUERY_CHARS * 2]
    text = "".join(ch if (ch.isalnum() or ch.isspace()) else " " for ch in text)
    return " ".join(text.split())[:MAX_QUERY_CHARS].strip()


def has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def grams(text: str) -> set[str]:
    """Character unigrams and overlapping bigrams of a normalised text."""
    chars = [c for c in text if not c.isspace()]
    out = set(chars)
    out.update(
        text[i : i + 2] for i in range(len(text) - 1) if not text[i].isspace() and not text[i + 1].isspace()
    )
    return out


def query_grams(phrase: str) -> set[str]:
    """The grams every text containing ``phrase`` must hold (bigrams, or the unigram)."""
    if len(phrase) == 1:
        return {phrase}
    return {phrase[i : i + 2] for i in range(len(phrase) - 1)}


def syllables(text: str) -> list[tuple[str, int, int]]:
    """Pinyin syllables of a normalised text with their [start, end) character spans.

    CJK characters give one syllable each (read in context by pypinyin); runs of latin letters and
    digits give one syllable; other characters give none.
    """
    # Imported here, not with the module: its dictionaries take a noticeable part of a second to load,
    # paid by every process that imports the app although only search indexing and queries need them.
    from pypinyin import lazy_pinyin

    out: list[tuple[str, int, int]] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if _CJK.match(ch):
            j = i
            while j < n and _CJK.match(text[j]):
                j += 1
            run = text[i:j]
            # errors= returning a list keeps one reading per unknown character (pypinyin accepts it).
            readings = lazy_pinyin(run, errors=lambda s: list(s))  # type: ignore[arg-type, return-value]  # its stub allows str only
            if len(readings) != len(run):  # never expected; keep spans aligned regardless
                readings = [lazy_pinyin(c, errors=lambda s: list(s))[0] for c in run]  # type: ignore[arg-type, return-value]  # as above
            for k, syl in enumerate(readings):
                out.append((syl.lower(), i + k, i + k + 1))
            i = j
        elif ch.isascii() and ch.isalnum():
            j = i
            while j < n and text[j].isascii() and text[j].isalnum():
                j += 1
            out.append((text[i:j].lower(), i, j))
            i = j
        else:
            i += 1
    return out


@functools.lru_cache(maxsize=8192)
def pinyin_of(text: str) -> tuple[str, str]:
    """(space-separated full pinyin, initials) of a normalised text."""
    syl = syllables(text)
    return " ".join(s for s, _, _ in syl), "".join(s[0] for s, _, _ in syl if s)


def pinyin_grams(pinyin: str, initials: str) -> set[str]:
    joined = pinyin.replace(" ", "")
    out = {"#" + joined[i : i + 2] for i in range(len(joined) - 1)}
    out.update("#" + initials[i : i + 2] for i in range(len(initials) - 1))
    return out


def within_one_edit(phrase: str, text: str) -> bool:
    """True when some substring of ``text`` is at most one edit (substitute, drop, add) from ``phrase``.

    Sellers' approximate substring matching, stopped as soon as the phrase fits.
    """
    m = len(phrase)
    prev = list(range(m + 1))
    for ch in text:
        cur = [0] * (m + 1)
        for i in range(1, m + 1):
            cost = 0 if phrase[i - 1] == ch else 1
            cur[i] = min(prev[i - 1] + cost, prev[i] + 1, cur[i - 1] + 1)
        if cur[m] <= 1:
            return True
        prev = cur
    return prev[m] <= 1


def strip_fillers(query: str) -> str:
    out = query
    for word in FILLERS:
        out = out.replace(word, " ")
    return " ".join(out.split())


_SEGMENTER_LOCK = threading.Lock()


@functools.cache
def _segmenter() -> jieba.Tokenizer:
    """jieba with the dictionary shipped inside its wheel (nothing downloaded), loaded once per process.

    A Tokenizer of our own rather than jieba's module-level one, so nothing else in the process
    (another library adding user words) changes how queries are cut. jieba is imported here, on the
    first segmentation, rather than with the module (its import loads its model tables).
    """
    import jieba

    jieba.setLogLevel(30)  # its start-up chatter ("Building prefix dict ...") is DEBUG/INFO noise in our logs
    tok = jieba.Tokenizer()
    with _SEGMENTER_LOCK:
        tok.initialize()
    return tok


@functools.lru_cache(maxsize=4096)
def segment(phrase: str) -> tuple[str, ...]:
    """Dictionary words of a normalised phrase (jieba, precise mode without HMM guessing).

    HMM is off on purpose: a word the dictionary lacks (危废, a typo such as 许克) falls apart into
    its characters, which can still all be found in a name, instead of becoming one made-up word
    that matches nothing. Spaces and punctuation are dropped.
    """
    return tuple(w for w in _segmenter().lcut(phrase, HMM=False) if any(ch.isalnum() for ch in w))


# The head of what a citizen asks for when it is a licence or a certificate ("X证": 烟草证, 食品经营许可证):
# the catalogue names such services by what they are about and the act (X许可, X资格认定, X核发), so
# the head says nothing a name must hold.
LICENCE_HEADS = frozenset({"证"})
# The measure words of everyday speech between a verb and its object (开个小店, 开一家超市, 办张卡):
# never what a service is about.
MEASURE_WORDS = frozenset({"个", "一个", "家", "一家", "张", "一张", "本", "一本", "间", "一间"})


def meaningful_words(query: str, licences: bool = False) -> tuple[str, ...]:
    """The words of a query that say what it is about: fillers and generic act words dropped, and
    single characters too (one character alone matches too much to count as a partial answer).

    With ``licences``, a single character the segmenter left before a licence head is kept with it
    (犬证 of 养小型犬需要办犬证么, cut 犬 / 证): "X证" is how citizens name the licence for X, so the
    pair is a word of the query, unlike other single characters (交满, 领), which are verbs and
    their objects."""
    words = []
    for word in strip_fillers(query).split():
        cut = segment(word) if has_cjk(word) else (word,)
        for k, w in enumerate(cut):
            if (
                licences
                and len(w) == 1
                and has_cjk(w)
                and w not in LICENCE_HEADS
                and k + 1 < len(cut)
                and cut[k + 1] in LICENCE_HEADS
            ):
                w += cut[k + 1]
            if len(w) >= 2 and w not in GENERIC_WORDS and w not in words:
                words.append(w)
    return tuple(words)


def subject_words(query: str) -> tuple[str, ...]:
    """The dictionary words of the query without fillers, generic act words (``GENERIC_WORDS``) and a
    licence head (``LICENCE_HEADS``): what a name must hold to be about the same thing. Unlike
    ``meaningful_words`` single characters stay (狗 in 狗证 is what it is about)."""
    words: list[str] = []
    verbs: list[str] = []
    for part in strip_fillers(query).split():
        for w in segment(part) if has_cjk(part) else (part,):
            if w in GENERIC_WORDS or w in LICENCE_HEADS or w in MEASURE_WORDS:
                continue
            # An everyday verb alone (开 of 开幼儿园, 领 of 领结婚证) is the act asked for, which the
            # name says in its own words (设立, 申领): ``asked_acts`` ranks by it, the name need not hold it.
            if len(w) == 1 and w in CITIZEN_ACTS:
                verbs.append(w)
                continue
            # A word with the head grown on (资格证, 营运证): what it is about is the rest.
            if len(w) >= 3 and w[-1] in LICENCE_HEADS:
                w = w[:-1]
            if w not in words:
                words.append(w)
    # ... unless the verb is most of what was typed: one character left (退修: 修) is no subject.
    if verbs and sum(map(len, words)) < 2:
        return tuple(dict.fromkeys([*verbs, *words]))
    return tuple(words)


# 证 typed as another character read zheng (正, 政, 整, 症 ...): the commonest slip of a pinyin IME in
# citizens' queries, since 证 ends most of what they ask for. Read as 证 where a licence head stands:
# at the end of a run of words, or before 明 (正明 -> 证明).
_HEAD_SYLLABLE = "zheng"


def licence_head_fixed(query: str) -> str:
    """The query with a character read like 证 and standing where 证 would (after another character,
    at the end of the query or of a word, before a filler word or before 明) replaced by 证."""
    if not has_cjk(query):
        return query
    chars = list(query)
    for syl, start, end in syllables(query):
        if end != start + 1 or chars[start] == "证" or syl != _HEAD_SYLLABLE or start == 0:
            continue
        after = query[end:]
        if not after or after[0] in " 明" or any(after.startswith(f) for f in FILLERS):
            chars[start] = "证"
        elif _stands_alone(query, start) and _ends_a_word(query[:start] + "证" + after, start):
            # Inside a question (结婚正丢了怎么补办, 教师资格正弄丢了): the character is a word of its own
            # as typed, and read as 证 it ends a dictionary word with what stands before it (结婚证).
            chars[start] = "证"
    return "".join(chars)


@functools.lru_cache(maxsize=4096)
def _word_spans(text: str) -> frozenset[tuple[int, int]]:
    """Where the segmenter's words of ``text`` start and end (every character kept, unlike ``segment``,
    which drops punctuation and so loses the positions)."""
    spans, pos = set(), 0
    for w in _segmenter().lcut(text, HMM=False):
        spans.add((pos, pos + len(w)))
        pos += len(w)
    return frozenset(spans)


def _stands_alone(text: str, at: int) -> bool:
    """Whether the segmenter leaves the character at ``at`` a word of its own (正 of 结婚正丢了, not
    of 正在 or 公正)."""
    return (at, at + 1) in _word_spans(text)


def _ends_a_word(text: str, at: int) -> bool:
    """Whether the segmenter makes a word of two characters or more ending at ``at`` (结婚证)."""
    return any(end == at + 1 and end - start >= 2 for start, end in _word_spans(text))


@functools.cache
def _two_character_words() -> tuple[dict[str, list[tuple[str, int]]], dict[str, list[tuple[str, int]]]]:
    """The segmenter dictionary's two-character words by their first and by their second character,
    with their frequencies (built once per process from the dictionary jieba already holds)."""
    by_first: dict[str, list[tuple[str, int]]] = {}
    by_second: dict[str, list[tuple[str, int]]] = {}
    for word, freq in _segmenter().FREQ.items():
        if len(word) == 2 and freq > 0 and _CJK.match(word[0]) and _CJK.match(word[1]):
            by_first.setdefault(word[0], []).append((word, freq))
            by_second.setdefault(word[1], []).append((word, freq))
    return by_first, by_second


# A correction must be a word people use: rarer dictionary words are as likely to be noise.
MIN_WORD_FREQUENCY = 10


def two_character_fixes(query: str, limit: int = 2) -> list[str]:
    """The query with one two-character run that is no dictionary word (低宝, 狗正) made one by
    swapping a character for a same- or near-sounding one (低保), the most frequent words first.

    Homophone matching through the index needs two of the query's characters in the name, so it
    cannot correct a two-character word; the dictionary can, because the typo leaves a pair the
    language does not have. Runs are the words between fillers (or the query itself).
    """
    freq = _segmenter().FREQ
    by_first, by_second = _two_character_words()
    chunks = list(dict.fromkeys([*strip_fillers(query).split(), query]))
    runs = [r for r in chunks if len(r) == 2]
    # Inside a longer run too: two characters the segmenter leaves as words of one character each,
    # side by side, are a word the typo broke (法率援助中心: 法 / 率 / 援助 / 中心).
    for chunk in chunks:
        cut = segment(chunk) if len(chunk) > 2 else ()
        runs += [a + b for a, b in itertools.pairwise(cut) if len(a) == 1 and len(b) == 1]
    fixes: list[tuple[int, str]] = []
    for run in dict.fromkeys(runs):
        if not all(_CJK.match(c) for c in run) or freq.get(run, 0) > 0:
            continue
        keys = sound_keys(run)
        for word, n in by_first.get(run[0], []):
            if n >= MIN_WORD_FREQUENCY and word[1] != run[1] and sound_keys(word)[1] == keys[1]:
                fixes.append((n, query.replace(run, word)))
        for word, n in by_second.get(run[1], []):
            if n >= MIN_WORD_FREQUENCY and word[0] != run[0] and sound_keys(word)[0] == keys[0]:
                fixes.append((n, query.replace(run, word)))
    fixes.sort(key=lambda f: -f[0])
    return list(dict.fromkeys(fix for _n, fix in fixes))[:limit]


def _loose_syllable(syl: str) -> str:
    """A syllable with the distinctions people commonly blur when typing pinyin folded away:
    z/zh, c/ch, s/sh, n/l, an/ang, en/eng, in/ing (the classic fuzzy-pinyin set of Chinese IMEs)."""
    if syl[:2] in ("zh", "ch", "sh"):
        syl = syl[0] + syl[2:]
    elif syl.startswith("n") and syl != "ng":
        syl = "l" + syl[1:]
    if len(syl) >= 3 and syl.endswith("ng") and syl[-3] in "aei":
        syl = syl[:-1]
    return syl


@functools.lru_cache(maxsize=16384)
def sound_keys(text: str) -> tuple[str, ...]:
    """One key per character of a normalised text: a CJK character's loose syllable (read in
    context by pypinyin), any other character itself. Two characters with the same key sound alike."""
    keys = list(text)
    for syl, start, end in syllables(text):
        if end == start + 1 and _CJK.match(text[start]):
            keys[start] = "~" + _loose_syllable(syl)
    return tuple(keys)


def sound_align(query: str, text: str, max_subs: int, max_gaps: int) -> tuple[int, int, list[int]] | None:
    """Place every character of ``query`` in ``text``, in order, each on the same character or on
    one that sounds alike, with at most ``max_subs`` sound-alike stand-ins and ``max_gaps`` jumps.

    Returns (gaps, stand-ins, positions in ``text``) of the placement with the fewest gaps, then the
    fewest stand-ins; None when there is none or it needs no stand-in (that is a plain words-apart
    match, found elsewhere). One pass per query character over the text: O(len(query) * len(text)).
    """
    qk, tk = sound_keys(query), sound_keys(text)
    n, m = len(query), len(text)
    if n == 0 or n > m:
        return None
    inf = (n + m + 1, n + 1)
    # cost[j]: best (gaps, subs) placing query[:i+1] with query[i] on text[j];
    # back[i][j]: where query[i-1] sat in that placement.
    cost: list[tuple[int, int]] = []
    back: list[list[int]] = []
    for i in range(n):
        cur = [inf] * m
        prev_at = [-1] * m
        best_before, best_at = inf, -1  # best cost among positions < j - 1 of the previous row
        for j in range(m):
            if i > 0 and j >= 2 and cost[j - 2] < best_before:
                best_before, best_at = cost[j - 2], j - 2
            same = query[i] == text[j]
            if not same and (qk[i] != tk[j] or not qk[i].startswith("~")):
                continue
            sub = 0 if same else 1
            if i == 0:
                cur[j] = (0, sub)
                continue
            options = []
            if j >= 1 and cost[j - 1] < inf:
                options.append(((cost[j - 1][0], cost[j - 1][1] + sub), j - 1))
            if best_at >= 0:
                options.append(((best_before[0] + 1, best_before[1] + sub), best_at))
            if options:
                cur[j], prev_at[j] = min(options)
        cost = cur
        back.append(prev_at)
    end = min(range(m), key=lambda j: (cost[j], j))
    gaps, subs = cost[end]
    if (gaps, subs) >= inf or subs == 0 or subs > max_subs or gaps > max_gaps:
        return None
    positions = [end]
    for i in range(n - 1, 0, -1):
        positions.append(back[i][positions[-1]])
    return gaps, subs, positions[::-1]


# How many characters an abbreviation may leave out of the name it stands for, in all.
ABBREVIATION_SLACK = 4


def abbreviation_span(word: str, text: str) -> tuple[int, int] | None:
    """Where ``text`` holds ``word`` as a Chinese abbreviation: its characters in order, the first
    and last ones present, with at most ``ABBREVIATION_SLACK`` characters left out between them
    (医保 = 医疗保险, 社保卡 = 社会保障卡, 低保 = 最低生活保障, 教师证 = 教师资格证). This is how
    Chinese shortens names, so it holds for words no alias table lists.

    Returns the tightest [start, end) span, or None (also when ``word`` is in ``text`` as it is:
    that is a plain match, not an abbreviation). Only 2 to 4 CJK characters are tried.
    """
    n = len(word)
    if not 2 <= n <= 4 or not all(_CJK.match(c) for c in word) or word in text:
        return None
    best: tuple[int, int] | None = None
    start = text.find(word[0])
    while start >= 0:
        pos, ok = start, True
        for ch in word[1:]:
            pos = text.find(ch, pos + 1)
            if pos < 0 or pos - start + 1 - n > ABBREVIATION_SLACK:
                ok = False
                break
        if ok and (best is None or pos + 1 - start < best[1] - best[0]):
            best = (start, pos + 1)
        start = text.find(word[0], start + 1)
    return best
