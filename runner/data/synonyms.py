"""A small English synonym list for EDA augmentation (runner.data.augment), shipped so that
nothing is downloaded.

Source and licence: written by hand for this project (not copied from WordNet or any other
thesaurus) and under the project's licence, Apache-2.0. Each line is a group of words that
can stand for each other in most contexts; a word's synonyms are the other words of its
groups. Common adjectives, verbs and nouns of reviews and news; about 580 words. Lower-case
ASCII only, so a character tokenizer trained on English text knows every letter.
"""

from __future__ import annotations

import functools

SYNONYM_GROUPS = """
good fine nice decent pleasant
great excellent superb wonderful terrific splendid
bad poor awful terrible dreadful lousy
boring dull tedious tiresome monotonous
interesting engaging absorbing intriguing fascinating
funny amusing hilarious comical humorous witty
sad unhappy sorrowful gloomy miserable
happy glad cheerful joyful content
big large huge enormous vast
small little tiny minor slight
fast quick rapid swift speedy
slow sluggish leisurely unhurried
smart clever intelligent bright brilliant
stupid dumb foolish silly idiotic
beautiful lovely pretty gorgeous attractive
ugly hideous unattractive unsightly
old ancient aged elderly
new fresh novel recent modern
easy simple effortless straightforward
hard difficult tough challenging demanding
strong powerful mighty sturdy robust
weak feeble frail flimsy fragile
rich wealthy affluent prosperous
important significant major crucial vital essential
strange odd weird peculiar unusual bizarre
common ordinary usual typical regular normal
clear obvious plain evident apparent
quiet silent calm peaceful still
loud noisy deafening
angry furious mad irate annoyed
afraid scared frightened fearful terrified
brave bold courageous fearless daring
kind gentle caring friendly generous
cruel harsh brutal vicious ruthless
honest sincere truthful genuine frank
true correct accurate right exact
false wrong incorrect mistaken untrue
whole entire complete full total
empty vacant bare hollow blank
cheap inexpensive affordable economical
expensive costly pricey dear
famous renowned celebrated noted
tired weary exhausted fatigued sleepy
sick ill unwell ailing
real actual authentic true genuine
perfect flawless ideal impeccable
safe secure protected
dangerous risky hazardous perilous unsafe
rare scarce uncommon infrequent
often frequently regularly repeatedly
maybe perhaps possibly
very really extremely truly highly
quite fairly rather pretty somewhat
almost nearly practically virtually
completely totally entirely fully utterly
quickly rapidly swiftly speedily
slowly gradually leisurely
suddenly abruptly unexpectedly
movie film picture feature
story tale plot narrative account
book novel volume text
actor performer player star
scene sequence episode
ending finale conclusion close finish
start beginning opening outset
end finish close conclusion
part piece portion section segment
problem issue trouble difficulty
idea notion concept thought
way method manner approach means
result outcome effect consequence
job work task duty chore
home house residence dwelling
car automobile vehicle auto
road street avenue lane route
child kid youngster youth
man guy fellow gentleman
woman lady
friend pal buddy companion mate
people folks persons individuals
country nation state land
city town municipality
shop store market outlet
money cash funds currency
price cost charge fee rate
help aid assist support
say state tell declare remark
talk speak chat converse
ask inquire question query
answer reply respond
look see watch view observe
think believe suppose reckon consider
know understand realize recognize
like enjoy love relish fancy
hate dislike detest loathe despise
want desire wish crave
need require demand
get obtain acquire gain receive
give provide offer supply hand
make create produce build construct
use employ utilize apply
try attempt endeavor strive
begin start commence launch
stop halt cease quit end
keep retain hold preserve maintain
leave depart exit go
come arrive approach
run sprint dash race hurry
walk stroll stride wander march
find discover locate uncover
show display reveal exhibit present
choose pick select opt
change alter modify adjust vary
fix repair mend restore
break smash shatter crack fracture
buy purchase acquire
sell vend trade market
win triumph prevail succeed
lose misplace forfeit
fail flop falter collapse
grow increase expand rise swell
fall drop decline sink decrease
move shift transfer relocate
seem appear look
happen occur arise transpire
allow permit let enable
stay remain linger wait
hurt injure harm wound damage
shout yell scream cry holler
laugh giggle chuckle
cry weep sob
eat consume devour dine
fight battle struggle combat clash
hide conceal cover mask
""".strip()


@functools.cache
def synonym_table() -> dict[str, tuple[str, ...]]:
    """{word: its synonyms, sorted}: the other words of every group the word is in."""
    table: dict[str, set[str]] = {}
    for line in SYNONYM_GROUPS.splitlines():
        words = line.split()
        for word in words:
            table.setdefault(word, set()).update(w for w in words if w != word)
    return {word: tuple(sorted(others)) for word, others in sorted(table.items())}
