"""Saving a Labels layer as DICOM SEG from napari (Qt-free ViewerModel, npe2's writer
dispatch): the layer segmented from a DICOM series references that series."""

from __future__ import annotations

import numpy as np
import pytest

hd = pytest.importorskip("highdicom")
pytest.importorskip("napari")

from napari.components import ViewerModel  # noqa: E402

from dicom_helpers import ct_series  # noqa: E402
from napari_res101unet import viewer as api  # noqa: E402
from napari_res101unet._reader import layer_data  # noqa: E402
from napari_res101unet.io import read_image  # noqa: E402
from napari_res101unet.io._dicom_seg import source_series  # noqa: E402


def _open(viewer, folder):
    data, kwargs, _ = layer_data(read_image(folder))
    return viewer.add_image(data, **kwargs)


def _save(layer, path):
    """Through npe2's writer dispatch: the ``.dcm`` suffix picks our manifest's writer."""
    import npe2

    npe2.PluginManager.instance().discover()
    return npe2.write(str(path), [layer], plugin_name="napari-res101unet")


def test_labels_of_a_dicom_series_save_as_seg(tmp_path):
    ct_series(tmp_path / "ct")
    viewer = ViewerModel()
    image = _open(viewer, tmp_path / "ct")
    labels = np.zeros((4, 24, 20), np.uint8)
    labels[1:3, 5:15, 4:12] = 2
    result = {"class_names": ["background", "liver", "tumour"], "algorithm": ["liver", "v1"]}
    layer = api.put_labels(viewer, image, labels, None)
    api.record_model(layer, result)
    written = _save(layer, tmp_path / "seg.dcm")
    assert written == [str(tmp_path / "seg.dcm")]
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["liver", "tumour"]
    algo = seg.SegmentSequence[0].SegmentationAlgorithmIdentificationSequence[0]
    assert (algo.AlgorithmName, algo.AlgorithmVersion) == ("liver", "v1")
    uids = [ds.SOPInstanceUID for ds in source_series(tmp_path / "ct")]
    back = seg.get_pixels_by_source_instance(uids, combine_segments=True)
    np.testing.assert_array_equal(back, labels)


def test_labels_of_a_non_dicom_image_are_refused(tmp_path):
    from napari_res101unet._writer import write_dicom_seg
    from napari_res101unet.io import write_image

    write_image(tmp_path / "ct.nii.gz", np.zeros((2, 32, 32), np.int16), spacing=(1, 1, 1))
    viewer = ViewerModel()
    image = _open(viewer, tmp_path / "ct.nii.gz")
    layer = api.put_labels(viewer, image, np.ones((2, 32, 32), np.uint8), None)
    with pytest.raises(ValueError, match="no DICOM images.*DICOM SEG needs the source"):
        write_dicom_seg(str(tmp_path / "seg.dcm"), layer.data, layer._get_state())
    drawn = viewer.add_labels(np.ones((8, 8), np.uint8), name="drawn")
    with pytest.raises(ValueError, match="'drawn' has no source file"):
        write_dicom_seg(str(tmp_path / "seg.dcm"), drawn.data, drawn._get_state())
    assert not (tmp_path / "seg.dcm").exists()


@pytest.mark.slow
def test_segment_layer_records_the_model_for_the_seg(tmp_path):
    ct_series(tmp_path / "ct")
    viewer = ViewerModel()
    image = _open(viewer, tmp_path / "ct")
    layer = api.segment_layer(viewer, image, "untrained", in_process=True, tile_size=32)
    ours = layer.metadata[api.TAG]
    assert ours["class_names"] == ["background", "foreground"]
    assert ours["algorithm"][0].endswith("Res101_UNet")  # the spec's name
    assert layer.metadata["source"] == str(tmp_path / "ct")
    _save(layer, tmp_path / "seg.dcm")
    seg = hd.seg.segread(tmp_path / "seg.dcm")
    assert [d.SegmentLabel for d in seg.SegmentSequence] == ["foreground"]
