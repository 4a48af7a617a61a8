/**
 * The COCO-80 label set in the order YOLO-family detectors number their classes, so a detector
 * that reports a numeric class id can be read as `COCO_LABELS[id]`.
 */
export const COCO_LABELS = [
  'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat',
  'traffic light', 'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog',
  'horse', 'sheep', 'cow', 'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
  'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard', 'sports ball', 'kite',
  'baseball bat', 'baseball glove', 'skateboard', 'surfboard', 'tennis racket', 'bottle',
  'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
  'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch', 'potted plant',
  'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
  'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors',
  'teddy bear', 'hair drier', 'toothbrush',
] as const;
export type CocoLabel = (typeof COCO_LABELS)[number];

/** `null` when the id is not a COCO-80 class id. */
export function cocoLabelForId(id: number): CocoLabel | null {
  if (!Number.isInteger(id) || id < 0) return null;
  return COCO_LABELS[id] ?? null;
}

/**
 * Everyday words (already lower-cased and reduced to the singular, one or two words) that a
 * person types when they mean a COCO label. Every label also maps onto itself.
 * Deliberately conservative: words such as "glass", "light" or "sign" are left alone because
 * they mean something other than the COCO object as often as not.
 */
const ALIASES: Record<string, CocoLabel> = {
  // person
  people: 'person', man: 'person', woman: 'person', child: 'person', kid: 'person', boy: 'person',
  girl: 'person', pedestrian: 'person', human: 'person', guy: 'person', lady: 'person',
  gentleman: 'person', adult: 'person', baby: 'person', toddler: 'person', someone: 'person',
  // vehicles
  bike: 'bicycle', cyclist: 'bicycle',
  automobile: 'car', taxi: 'car', sedan: 'car',
  motorbike: 'motorcycle', 'motor bike': 'motorcycle', 'motor cycle': 'motorcycle', moped: 'motorcycle',
  plane: 'airplane', aeroplane: 'airplane', 'air plane': 'airplane', aircraft: 'airplane',
  jet: 'airplane', airliner: 'airplane',
  locomotive: 'train', tram: 'train',
  lorry: 'truck', firetruck: 'truck',
  ship: 'boat', ferry: 'boat', yacht: 'boat', canoe: 'boat', kayak: 'boat', sailboat: 'boat',
  // street furniture
  'traffic signal': 'traffic light', stoplight: 'traffic light', 'stop light': 'traffic light',
  hydrant: 'fire hydrant',
  // animals
  pigeon: 'bird', seagull: 'bird', gull: 'bird', parrot: 'bird',
  kitten: 'cat', kitty: 'cat',
  puppy: 'dog', pup: 'dog',
  pony: 'horse',
  lamb: 'sheep',
  cattle: 'cow', bull: 'cow', calf: 'cow', ox: 'cow',
  // accessories and sports
  rucksack: 'backpack',
  purse: 'handbag',
  necktie: 'tie',
  luggage: 'suitcase',
  ski: 'skis',
  ball: 'sports ball', 'sport ball': 'sports ball', football: 'sports ball',
  basketball: 'sports ball', 'soccer ball': 'sports ball',
  bat: 'baseball bat',
  glove: 'baseball glove', mitt: 'baseball glove',
  racket: 'tennis racket', racquet: 'tennis racket', 'tennis racquet': 'tennis racket',
  // kitchen and food
  wineglass: 'wine glass',
  mug: 'cup',
  hotdog: 'hot dog',
  doughnut: 'donut',
  // furniture and household
  sofa: 'couch',
  plant: 'potted plant', houseplant: 'potted plant',
  table: 'dining table',
  television: 'tv', tvs: 'tv', 'tv monitor': 'tv', tvmonitor: 'tv',
  phone: 'cell phone', mobile: 'cell phone', smartphone: 'cell phone', cellphone: 'cell phone',
  'mobile phone': 'cell phone', 'smart phone': 'cell phone', telephone: 'cell phone',
  iphone: 'cell phone',
  fridge: 'refrigerator',
  teddy: 'teddy bear',
  'hair dryer': 'hair drier', hairdryer: 'hair drier', hairdrier: 'hair drier',
  dryer: 'hair drier', drier: 'hair drier',
};

const LOOKUP: ReadonlyMap<string, CocoLabel> = new Map<string, CocoLabel>([
  ...COCO_LABELS.map((label) => [label, label] as const),
  ...Object.entries(ALIASES),
]);

/**
 * The COCO label a (lower-case, singular) word or two-word phrase stands for, or `null`.
 * Plural COCO labels ("skis", "scissors") are found under their own spelling too.
 */
export function cocoLabelForTerm(term: string): CocoLabel | null {
  return LOOKUP.get(term) ?? null;
}
