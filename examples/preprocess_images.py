# preprocess_images.py: the script of Valohai's "Network Storage" docs page
# ("Complete Workflow Example: Mount -> Preprocess -> Save Pattern"), unchanged apart from
# these comments, kept here to compare with the one vhprep command that replaces it
# (see README.md; the `preprocess-images-python` step of valohai.yaml runs it).
# A copy runnable on any folder, for benchmarks: bench/peers/python_loop.py.
import os
from PIL import Image
import pandas as pd
import json

# 1. Access raw data from network mount (NOT versioned)
mount_path = '/mnt/raw-images/'
image_files = [f for f in os.listdir(mount_path) if f.endswith('.jpg')]

print(f"Found {len(image_files)} images on network mount")

# 2. Process images
processed_data = []
output_dir = '/valohai/outputs/processed_images/'
os.makedirs(output_dir, exist_ok=True)

for filename in image_files:
    # Read from mount
    input_path = os.path.join(mount_path, filename)
    img = Image.open(input_path)

    # Process (resize, augment, etc.)
    img_resized = img.resize((224, 224))

    # Save processed image to Valohai outputs (VERSIONED ✅)
    output_path = os.path.join(output_dir, filename)
    img_resized.save(output_path)

    # Track metadata
    processed_data.append({
        'filename': filename,
        'original_size': img.size,
        'processed_size': img_resized.size
    })

# 3. Save metadata
df = pd.DataFrame(processed_data)
df.to_csv('/valohai/outputs/processing_metadata.csv', index=False)

# 4. Create dataset version from processed images
metadata = {
    f"processed_images/{filename}": {
        "valohai.dataset-versions": [{
            "uri": "dataset://preprocessed-images/v1"
        }]
    }
    for filename in image_files
}

# Add metadata file itself
metadata["processing_metadata.csv"] = {
    "valohai.dataset-versions": [{"uri": "dataset://preprocessed-images/v1"}]
}

# Save metadata for dataset creation
metadata_path = '/valohai/outputs/valohai.metadata.jsonl'
with open(metadata_path, 'w') as f:
    for fname, fmeta in metadata.items():
        json.dump({"file": fname, "metadata": fmeta}, f)
        f.write('\n')

print(f"Processed {len(image_files)} images")
print("Created versioned dataset: dataset://preprocessed-images/v1")
