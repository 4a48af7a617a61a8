import { describe, expect, it } from 'vitest';
import { MatchSchema } from '../src/domain/result.ts';
import { COCO_LABELS, cocoLabelForTerm } from '../src/domain/query/coco.ts';
import { DEFAULT_MIN_CONFIDENCE, matchClips, normalizeWords, parseQuery, singularize, type MatchableClip } from '../src/domain/query/match.ts';

function clip(
  index: number,
  objects: Array<[string, number]> = [],
  transcript: string | null = null,
  times: [number | null, number | null] = [index * 4, index * 4 + 4],
): MatchableClip {
  return {
    index,
    start_s: times[0],
    end_s: times[1],
    transcript,
    objects: objects.map(([label, max_confidence]) => ({ label, max_confidence })),
  };
}

describe('singularize', () => {
  it.each([
    ['cars', 'car'],
    ['bikes', 'bike'],
    ['buses', 'bus'],
    ['bus', 'bus'],
    ['people', 'person'],
    ['persons', 'person'],
    ['men', 'man'],
    ['women', 'woman'],
    ['children', 'child'],
    ['knives', 'knife'],
    ['wolves', 'wolf'],
    ['mice', 'mouse'],
    ['boxes', 'box'],
    ['glasses', 'glass'],
    ['glass', 'glass'],
    ['dishes', 'dish'],
    ['benches', 'bench'],
    ['toothbrushes', 'toothbrush'],
    ['puppies', 'puppy'],
    ['ponies', 'pony'],
    ['ties', 'tie'],
    ['movies', 'movie'],
    ['houses', 'house'],
    ['horses', 'horse'],
    ['oranges', 'orange'],
    ['photos', 'photo'],
    ['potatoes', 'potato'],
    ['toys', 'toy'],
    ['tennis', 'tennis'],
    ['skis', 'skis'],
    ['scissors', 'scissors'],
    ['series', 'series'],
    ['lens', 'lens'],
    ['lenses', 'lens'],
    ['virus', 'virus'],
    ['gas', 'gas'],
    ['its', 'its'],
    ['car', 'car'],
  ])('%s → %s', (plural, singular) => {
    expect(singularize(plural)).toBe(singular);
  });
});

describe('normalizeWords', () => {
  it('lower-cases, splits on punctuation, drops apostrophes and reduces plurals', () => {
    expect(normalizeWords("Two RED cars—and the driver's dogs, don't they?")).toEqual(['two', 'red', 'car', 'and', 'the', 'driver', 'dog', 'dont', 'they']);
  });

  it('treats composed and decomposed accents alike', () => {
    expect(normalizeWords('Cafe\u0301 café')).toEqual(['café', 'café']);
  });
});

describe('parseQuery', () => {
  it('turns the example query into the car label', () => {
    expect(parseQuery('find scenes with cars')).toEqual({ labels: ['car'], words: [] });
  });

  it('drops punctuation and stop words, keeps content words for the transcript', () => {
    expect(parseQuery('Show me the clips where a man is riding, and there are some dogs!')).toEqual({
      labels: ['person', 'dog'],
      words: ['riding'],
    });
    expect(
      parseQuery(
        'find show me scenes scene clips clip with where the a an of in on and or any all that there is are some for to video videos frames frame containing contains explosion',
      ),
    ).toEqual({ labels: [], words: ['explosion'] });
  });

  it('keeps words that are not labels, singular, for the transcript', () => {
    expect(parseQuery('Goals, penalties and referees')).toEqual({ labels: [], words: ['goal', 'penalty', 'referee'] });
  });

  it('drops numbers and number words, which a clip cannot be matched on', () => {
    expect(parseQuery('3 cars and two trucks, 2024')).toEqual({ labels: ['car', 'truck'], words: [] });
  });

  it('deduplicates and keeps first-seen order', () => {
    expect(parseQuery('dogs, cats, a dog, red, Red, person and people')).toEqual({
      labels: ['dog', 'cat', 'person'],
      words: ['red'],
    });
  });

  it.each([
    ['people', 'person'],
    ['person', 'person'],
    ['persons', 'person'],
    ['man', 'person'],
    ['men', 'person'],
    ['woman', 'person'],
    ['women', 'person'],
    ['child', 'person'],
    ['children', 'person'],
    ['kid', 'person'],
    ['kids', 'person'],
    ['boy', 'person'],
    ['girls', 'person'],
    ['pedestrians', 'person'],
    ['bike', 'bicycle'],
    ['bikes', 'bicycle'],
    ['bicycles', 'bicycle'],
    ['motorbike', 'motorcycle'],
    ['motorcycles', 'motorcycle'],
    ['plane', 'airplane'],
    ['aeroplanes', 'airplane'],
    ['airplane', 'airplane'],
    ['phone', 'cell phone'],
    ['mobile', 'cell phone'],
    ['smartphones', 'cell phone'],
    ['tv', 'tv'],
    ['TVs', 'tv'],
    ['television', 'tv'],
    ['laptops', 'laptop'],
    ['sofa', 'couch'],
    ['couches', 'couch'],
    ['table', 'dining table'],
    ['buses', 'bus'],
    ['knives', 'knife'],
    ['mice', 'mouse'],
    ['puppies', 'dog'],
    ['fridge', 'refrigerator'],
    ['skis', 'skis'],
    ['ski', 'skis'],
    ['scissors', 'scissors'],
    ['toothbrushes', 'toothbrush'],
    ['benches', 'bench'],
    ['sheep', 'sheep'],
  ])('maps %s onto %s', (word, label) => {
    expect(parseQuery(word)).toEqual({ labels: [label], words: [] });
  });

  it.each([
    ['cell phone', 'cell phone'],
    ['cell phones', 'cell phone'],
    ['cell-phone', 'cell phone'],
    ['traffic lights', 'traffic light'],
    ['fire hydrant', 'fire hydrant'],
    ['stop signs', 'stop sign'],
    ['parking meter', 'parking meter'],
    ['sports ball', 'sports ball'],
    ['sports balls', 'sports ball'],
    ['baseball bats', 'baseball bat'],
    ['baseball glove', 'baseball glove'],
    ['tennis racket', 'tennis racket'],
    ['wine glasses', 'wine glass'],
    ['hot dogs', 'hot dog'],
    ['potted plants', 'potted plant'],
    ['dining table', 'dining table'],
    ['teddy bears', 'teddy bear'],
    ['hair drier', 'hair drier'],
    ['hair dryers', 'hair drier'],
    ['mobile phone', 'cell phone'],
    ['Motor-bike', 'motorcycle'],
  ])('reads the two words %j as the label %s', (phrase, label) => {
    expect(parseQuery(`find ${phrase}`)).toEqual({ labels: [label], words: [] });
  });

  it('does not join words across a stop word into a two-word label', () => {
    expect(parseQuery('hot and dog')).toEqual({ labels: ['dog'], words: ['hot'] });
    expect(parseQuery('stop the sign')).toEqual({ labels: [], words: ['stop', 'sign'] });
  });

  it('leaves half of a two-word label as a plain word when it is ambiguous', () => {
    expect(parseQuery('glasses')).toEqual({ labels: [], words: ['glass'] });
    expect(parseQuery('lights')).toEqual({ labels: [], words: ['light'] });
    expect(parseQuery('boxes')).toEqual({ labels: [], words: ['box'] });
  });

  it('mixes labels and words in one query', () => {
    expect(parseQuery('red cars near a woman with an umbrella, honking')).toEqual({
      labels: ['car', 'person', 'umbrella'],
      words: ['red', 'honking'],
    });
  });

  it('has nothing to search for in an empty or stop-word-only query', () => {
    expect(parseQuery('')).toEqual({ labels: [], words: [] });
    expect(parseQuery('   \t ')).toEqual({ labels: [], words: [] });
    expect(parseQuery('find the scenes with all of it!?')).toEqual({ labels: [], words: [] });
  });

  it('maps every COCO label onto itself', () => {
    for (const label of COCO_LABELS) {
      expect(parseQuery(label).labels, label).toEqual([label]);
      expect(cocoLabelForTerm(label)).toBe(label);
    }
  });
});

describe('matchClips', () => {
  it('matches nothing without a query', () => {
    const clips = [clip(0, [['car', 0.9]], 'a car')];
    expect(matchClips(clips, null)).toEqual([]);
    expect(matchClips(clips, '')).toEqual([]);
    expect(matchClips(clips, '   ')).toEqual([]);
    expect(matchClips(clips, 'find scenes with the')).toEqual([]);
  });

  it('matches a detected label and scores it by its confidence (the DESIGN example)', () => {
    const clips = [
      clip(
        0,
        [
          ['car', 0.91],
          ['person', 0.8],
        ],
        'a red car passes',
        [0, 4],
      ),
      clip(1, [['dog', 0.9]]),
    ];
    expect(matchClips(clips, 'find scenes with cars')).toEqual([
      { clip_index: 0, start_s: 0, end_s: 4, score: 0.91, reasons: [{ type: 'object', label: 'car', confidence: 0.91 }] },
    ]);
  });

  it('counts an object at the threshold and not below it', () => {
    const clips = [clip(0, [['car', DEFAULT_MIN_CONFIDENCE]]), clip(1, [['car', 0.4999]])];
    expect(DEFAULT_MIN_CONFIDENCE).toBe(0.5);
    expect(matchClips(clips, 'car').map((m) => m.clip_index)).toEqual([0]);
    expect(matchClips(clips, 'car', { minConfidence: 0.4 }).map((m) => m.clip_index)).toEqual([0, 1]);
    expect(matchClips(clips, 'car', { minConfidence: 0.6 })).toEqual([]);
    expect(matchClips(clips, 'car', {})).toHaveLength(1);
  });

  it('maps query synonyms onto detected labels', () => {
    const clips = [clip(0, [['person', 0.7]]), clip(1, [['cell phone', 0.6]]), clip(2, [['bicycle', 0.55]])];
    expect(matchClips(clips, 'people').map((m) => m.clip_index)).toEqual([0]);
    expect(matchClips(clips, 'a woman').map((m) => m.clip_index)).toEqual([0]);
    expect(matchClips(clips, 'phones').map((m) => m.clip_index)).toEqual([1]);
    expect(matchClips(clips, 'bikes').map((m) => m.clip_index)).toEqual([2]);
  });

  it('compares detected labels case- and space-insensitively', () => {
    expect(matchClips([clip(0, [[' Cell Phone', 0.8]])], 'cell phone')).toEqual([
      {
        clip_index: 0,
        start_s: 0,
        end_s: 4,
        score: 0.8,
        reasons: [{ type: 'object', label: 'cell phone', confidence: 0.8 }],
      },
    ]);
  });

  it('takes the best confidence when a label is listed twice', () => {
    const [match] = matchClips(
      [
        clip(0, [
          ['car', 0.6],
          ['car', 0.85],
          ['car', 0.7],
        ]),
      ],
      'car',
    );
    expect(match?.reasons).toEqual([{ type: 'object', label: 'car', confidence: 0.85 }]);
    expect(match?.score).toBe(0.85);
  });

  it('matches remaining words in the transcript as whole words, plural-insensitive', () => {
    const clips = [clip(0, [], 'The boxes are stacked.'), clip(1, [], 'a BOX!'), clip(2, [], 'a boxer and a toolbox'), clip(3, [], null)];
    const matches = matchClips(clips, 'find boxes');
    expect(matches).toEqual([
      { clip_index: 0, start_s: 0, end_s: 4, score: 1, reasons: [{ type: 'transcript', word: 'box' }] },
      { clip_index: 1, start_s: 4, end_s: 8, score: 1, reasons: [{ type: 'transcript', word: 'box' }] },
    ]);
  });

  it('finds a label term in the transcript when nothing was detected', () => {
    expect(matchClips([clip(0, [], 'a red car passes')], 'cars')).toEqual([{ clip_index: 0, start_s: 0, end_s: 4, score: 1, reasons: [{ type: 'transcript', word: 'car' }] }]);
  });

  it('scores a words-only match by the fraction of query terms found', () => {
    const clips = [clip(0, [], 'the goal was scored'), clip(1, [], 'a penalty and a goal'), clip(2, [], 'nothing')];
    expect(matchClips(clips, 'goal penalty referee')).toEqual([
      {
        clip_index: 1,
        start_s: 4,
        end_s: 8,
        score: 0.666667,
        reasons: [
          { type: 'transcript', word: 'goal' },
          { type: 'transcript', word: 'penalty' },
        ],
      },
      { clip_index: 0, start_s: 0, end_s: 4, score: 0.333333, reasons: [{ type: 'transcript', word: 'goal' }] },
    ]);
  });

  it('scores mixed queries by the mean credit over all terms, objects first in the reasons', () => {
    const clips = [clip(0, [['car', 0.9]], 'look at that red one'), clip(1, [['car', 0.8]]), clip(2, [], 'red sky')];
    expect(matchClips(clips, 'red cars')).toEqual([
      {
        clip_index: 0,
        start_s: 0,
        end_s: 4,
        score: 0.95,
        reasons: [
          { type: 'object', label: 'car', confidence: 0.9 },
          { type: 'transcript', word: 'red' },
        ],
      },
      { clip_index: 2, start_s: 8, end_s: 12, score: 0.5, reasons: [{ type: 'transcript', word: 'red' }] },
      { clip_index: 1, start_s: 4, end_s: 8, score: 0.4, reasons: [{ type: 'object', label: 'car', confidence: 0.8 }] },
    ]);
  });

  it('sorts by score descending, then by clip index', () => {
    const clips = [clip(5, [['dog', 0.7]]), clip(3, [['dog', 0.9]]), clip(1, [['dog', 0.7]]), clip(4, [['cat', 0.99]]), clip(2, [['dog', 0.7]])];
    expect(matchClips(clips, 'dogs').map((m) => [m.clip_index, m.score])).toEqual([
      [3, 0.9],
      [1, 0.7],
      [2, 0.7],
      [5, 0.7],
    ]);
  });

  it('lists a reason for each label that matched, in query order', () => {
    const [match] = matchClips(
      [
        clip(0, [
          ['dog', 0.6],
          ['person', 0.8],
          ['frisbee', 0.3],
        ]),
      ],
      'people with dogs and a frisbee',
    );
    expect(match).toEqual({
      clip_index: 0,
      start_s: 0,
      end_s: 4,
      score: 0.466667,
      reasons: [
        { type: 'object', label: 'person', confidence: 0.8 },
        { type: 'object', label: 'dog', confidence: 0.6 },
      ],
    });
  });

  it('passes unknown clip times through as null', () => {
    expect(matchClips([clip(7, [['bus', 0.75]], null, [null, null])], 'bus')).toEqual([
      { clip_index: 7, start_s: null, end_s: null, score: 0.75, reasons: [{ type: 'object', label: 'bus', confidence: 0.75 }] },
    ]);
  });

  it('keeps scores within [0, 1] even for out-of-range confidences', () => {
    expect(matchClips([clip(0, [['car', 1.7]])], 'car')[0]?.score).toBe(1);
  });

  it('produces matches that satisfy the result schema', () => {
    const clips = [clip(0, [['car', 0.91]], 'honking horns', [0, 4.5]), clip(1, [], 'more honking')];
    const matches = matchClips(clips, 'cars honking');
    expect(matches).toHaveLength(2);
    for (const m of matches) expect(MatchSchema.parse(m)).toEqual(m);
  });

  it('matches nothing in clips without objects or transcripts', () => {
    expect(matchClips([clip(0), clip(1)], 'cars on fire')).toEqual([]);
    expect(matchClips([], 'cars')).toEqual([]);
  });
});
