"""British -> American spelling table for the WER normaliser (a reasonable, not exhaustive, list).

Built from word families rather than a flat list, so inflections come for free:

* ``-our`` -> ``-or`` (colour, honour, neighbour, ...) with s/ed/ing/ful/ite/able/er/ers endings;
* ``-ise``/``-isation`` -> ``-ize``/``-ization`` for the common verbs (realise, organise, ...);
* ``-re`` -> ``-er`` (centre, theatre, metre, ...);
* ``-ce`` -> ``-se`` nouns (defence, offence, licence, pretence);
* doubled ``l`` before a suffix (travelled, cancelling, jeweller, ...);
* a short list of one-off words (grey, programme, cheque, tyre, aluminium, ...).

Words are matched whole, after lower-casing; VCTK/LibriSpeech references use British spellings, ASR models
American ones, so both sides are mapped to American.
"""

from __future__ import annotations

from typing import Dict

_OUR_STEMS = (
    "arbo ardo armo behavio cando clamo colo endeavo favo fervo flavo harbo hono humo labo neighbo odo "
    "parlo ranco rigo rumo savo splendo tumo valo vapo vigo"
).split()
_OUR_ENDINGS = ("", "s", "ed", "ing", "ful", "ite", "ites", "able", "er", "ers", "less", "ly", "ism")

_ISE_STEMS = (
    "agonis apologis authoris capitalis categoris characteris civilis colonis criticis economis emphasis "
    "equalis finalis fossilis harmonis hospitalis idealis immortalis itemis legalis legitimis localis "
    "maximis memoris minimis mobilis modernis monopolis moralis neutralis normalis organis patronis "
    "penalis polaris popularis prioritis publicis realis recognis scrutinis sensitis specialis stabilis "
    "standardis sterilis summaris symbolis sympathis synchronis theoris tranquillis utilis vandalis "
    "verbalis visualis vocalis"
).split()
_ISE_ENDINGS = ("e", "es", "ed", "ing", "er", "ers", "ation", "ations")

_RE_STEMS = "cent theat met lit fib calib somb spect meag lust sab scept"
_RE_ENDINGS = {"": "", "s": "s", "d": "ed"}

_CE_WORDS = {"defence": "defense", "offence": "offense", "licence": "license", "pretence": "pretense"}

_DOUBLE_L_STEMS = "travel cancel label model quarrel marvel level signal fuel duel channel counsel tunnel rival"
_DOUBLE_L_ENDINGS = ("ed", "ing", "er", "ers", "or", "ors")

_SINGLE_WORDS = {
    "grey": "gray", "greys": "grays", "programme": "program", "programmes": "programs", "cheque": "check",
    "cheques": "checks", "tyre": "tire", "tyres": "tires", "kerb": "curb", "aluminium": "aluminum",
    "mould": "mold", "moulds": "molds", "mouldy": "moldy", "smoulder": "smolder", "smouldering": "smoldering",
    "storey": "story", "storeys": "stories", "draught": "draft", "draughts": "drafts", "gaol": "jail",
    "sceptic": "skeptic", "sceptical": "skeptical", "catalogue": "catalog", "catalogues": "catalogs",
    "dialogue": "dialog", "dialogues": "dialogs", "analogue": "analog", "plough": "plow", "ploughed": "plowed",
    "ploughing": "plowing", "ploughs": "plows", "ageing": "aging", "judgement": "judgment",
    "judgements": "judgments", "acknowledgement": "acknowledgment", "jewellery": "jewelry", "pyjamas": "pajamas",
    "artefact": "artifact", "artefacts": "artifacts", "manoeuvre": "maneuver", "manoeuvres": "maneuvers",
    "encyclopaedia": "encyclopedia", "anaesthetic": "anesthetic", "paediatric": "pediatric",
    "oestrogen": "estrogen", "foetus": "fetus", "mediaeval": "medieval", "whilst": "while", "amongst": "among",
    "learnt": "learned", "spelt": "spelled", "dreamt": "dreamed", "burnt": "burned", "spoilt": "spoiled",
    "leapt": "leaped", "cosy": "cozy", "practise": "practice", "practised": "practiced",
    "practising": "practicing", "towards": "toward", "afterwards": "afterward", "behaviour": "behavior",
    "woollen": "woolen", "enrol": "enroll", "enrolment": "enrollment",
    "fulfil": "fulfill", "fulfilment": "fulfillment", "instalment": "installment", "skilful": "skillful",
    "wilful": "willful", "centre": "center", "metres": "meters", "ok": "okay",
}


def _build() -> Dict[str, str]:
    table: Dict[str, str] = {}
    for stem in _OUR_STEMS:
        for end in _OUR_ENDINGS:
            table[f"{stem}ur{end}"] = f"{stem}r{end}"
    for stem in _ISE_STEMS:
        for end in _ISE_ENDINGS:
            table[f"{stem}{end}"] = f"{stem[:-1]}z{end}"
    for stem in _RE_STEMS.split():
        for brit_end, amer_end in _RE_ENDINGS.items():
            table[f"{stem}re{brit_end}"] = f"{stem}er{amer_end}"
    table.update(_CE_WORDS)
    for stem in _DOUBLE_L_STEMS.split():
        for end in _DOUBLE_L_ENDINGS:
            table[f"{stem}l{end}"] = f"{stem}{end}"
    table.update(_SINGLE_WORDS)
    return {brit: amer for brit, amer in table.items() if brit != amer}


BRITISH_TO_AMERICAN: Dict[str, str] = _build()
