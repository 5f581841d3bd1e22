# ruff: noqa: E401, E702, I001  (kept compact for the README; the code below is what README.md shows)
import json, sys, numpy as np, onnxruntime as ort
from PIL import Image, ImageOps
session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
meta = session.get_modelmeta().custom_metadata_map
R, S, mean, std, names = (json.loads(meta[k]) for k in ("resize_size", "image_size", "mean", "std", "class_names"))
img = Image.open(sys.argv[2]); img.draft("RGB", (R, R)); img = ImageOps.exif_transpose(img).convert("RGB")
w, h = img.size
img = img.resize((R, max(R, int(R * h / w))) if w <= h else (max(R, int(R * w / h)), R), Image.BILINEAR)
left, top = round((img.width - R) / 2) + (R - S) // 2, round((img.height - R) / 2) + (R - S) // 2
x = (np.asarray(img.crop((left, top, left + S, top + S)), np.float32) / 255 - mean) / std
logits = session.run(None, {"input": x.transpose(2, 0, 1)[None].astype(np.float32)})[0][0]
p = np.exp(logits - logits.max()); print(names[p.argmax()], f"{p.max() / p.sum():.3f}")
