# Blender side of `lrm dataset render --engine blender` (docs/datasets.md, "The Blender path").
#
#   blender --background --factory-startup --python-exit-code 1 --python render_views.py -- job.json
#
# job.json (written by bindings/LrmNative/Data/BlenderEngine.cs):
#   mesh            path of the .obj/.ply/.glb to import
#   scale, center   the normalisation computed by the C# side: p' = (p - center) * scale
#   bounds          [min xyz, max xyz] of the normalised mesh as the C# reader sees it (checked after import)
#   width, height   image size in pixels
#   focal           [fx, fy] normalised by width/height; principal [cx, cy] likewise (for reference)
#   sensor_width, lens, shift_x, shift_y   the Blender camera for them (horizontal sensor fit)
#   cameras         camera-to-world 4x4 matrices, row-major, OpenGL convention (look down -Z, +Y up): Blender's own
#                   camera convention, so each one is the camera object's matrix_world as is
#   lighting        sky, ground (RGB), lights [{direction (towards the light), color}]
#   engine          CYCLES or BLENDER_EEVEE(_NEXT); samples
#   out             folder for NNN.png (8-bit RGBA, transparent film)
#
# Any failure raises, so Blender exits with code 1 and the message on stderr; the C# side names the mesh.
import json
import os
import sys

import bpy
from mathutils import Matrix, Vector


def fail(message):
    sys.stderr.write("lrm-blender: " + message + "\n")
    sys.exit(1)


def has_op(module, name):
    return name in dir(getattr(bpy.ops, module))


def import_mesh(path):
    ext = os.path.splitext(path)[1].lower()
    # Keep the file's own axes (the C# readers keep OBJ/PLY as stored, z-up): forward Y / up Z is the identity.
    if ext == ".obj":
        if has_op("wm", "obj_import"):  # Blender 3.2+
            bpy.ops.wm.obj_import(filepath=path, forward_axis="Y", up_axis="Z")
        elif has_op("import_scene", "obj"):  # older: the Python importer
            bpy.ops.import_scene.obj(filepath=path, axis_forward="Y", axis_up="Z", split_mode="OFF")
        else:
            fail("this Blender has no OBJ importer (wm.obj_import / import_scene.obj)")
    elif ext == ".ply":
        if has_op("wm", "ply_import"):  # Blender 3.6+
            bpy.ops.wm.ply_import(filepath=path, forward_axis="Y", up_axis="Z")
        elif has_op("import_mesh", "ply"):
            bpy.ops.import_mesh.ply(filepath=path)
        else:
            fail("this Blender has no PLY importer (wm.ply_import / import_mesh.ply)")
    elif ext == ".glb":
        # glTF is y-up; Blender's importer turns (x, y, z) into (x, -z, y), exactly as our GlbReader does.
        if has_op("import_scene", "gltf"):
            # Blender 3.4's glTF importer uses numpy.bool, removed in NumPy 1.24 (Debian 12 pairs the two).
            import numpy

            if "bool" not in numpy.__dict__:
                numpy.bool = numpy.bool_
            bpy.ops.import_scene.gltf(filepath=path)
        else:
            fail("this Blender has no glTF importer (import_scene.gltf)")
    else:
        fail("unsupported mesh extension " + ext)


def world_bounds(objects):
    lo = [float("inf")] * 3
    hi = [float("-inf")] * 3
    depsgraph = bpy.context.evaluated_depsgraph_get()
    for obj in objects:
        evaluated = obj.evaluated_get(depsgraph)
        mesh = evaluated.to_mesh()
        matrix = evaluated.matrix_world
        for vertex in mesh.vertices:
            p = matrix @ vertex.co
            for k in range(3):
                lo[k] = min(lo[k], p[k])
                hi[k] = max(hi[k], p[k])
        evaluated.to_mesh_clear()
    return lo, hi


def has_image_texture(material):
    return material is not None and material.use_nodes and any(n.type == "TEX_IMAGE" for n in material.node_tree.nodes)


def diffuse_material(name, color_attribute=None, rgb=(0.8, 0.8, 0.8)):
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes = material.node_tree.nodes
    links = material.node_tree.links
    nodes.clear()
    output = nodes.new("ShaderNodeOutputMaterial")
    diffuse = nodes.new("ShaderNodeBsdfDiffuse")
    links.new(diffuse.outputs["BSDF"], output.inputs["Surface"])
    if color_attribute is not None:
        if "ShaderNodeVertexColor" in dir(bpy.types):
            attribute = nodes.new("ShaderNodeVertexColor")
            attribute.layer_name = color_attribute
            links.new(attribute.outputs["Color"], diffuse.inputs["Color"])
        else:
            attribute = nodes.new("ShaderNodeAttribute")
            attribute.attribute_name = color_attribute
            links.new(attribute.outputs["Color"], diffuse.inputs["Color"])
    else:
        diffuse.inputs["Color"].default_value = (rgb[0], rgb[1], rgb[2], 1.0)
    return material


def color_attribute_name(mesh):
    attributes = getattr(mesh, "color_attributes", None)
    if attributes is not None and len(attributes) > 0:
        return attributes[0].name
    layers = getattr(mesh, "vertex_colors", None)
    if layers is not None and len(layers) > 0:
        return layers[0].name
    return None


def prepare_materials(objects):
    # Textured materials stay as imported (that is what this path is for). Untextured meshes with vertex colours get
    # a diffuse material reading them (the CPU path's colours); meshes with no material at all get grey 0.8.
    for obj in objects:
        mesh = obj.data
        textured = any(has_image_texture(slot.material) for slot in obj.material_slots)
        colors = color_attribute_name(mesh)
        if textured:
            continue
        if colors is not None:
            material = diffuse_material("lrm_vertex_colors", color_attribute=colors)
        elif len(obj.material_slots) == 0 or all(slot.material is None for slot in obj.material_slots):
            material = diffuse_material("lrm_grey")
        else:
            continue
        mesh.materials.clear()
        mesh.materials.append(material)


def setup_lighting(scene, lighting):
    world = bpy.data.worlds.new("lrm_world")
    scene.world = world
    world.use_nodes = True
    background = world.node_tree.nodes.get("Background")
    sky = lighting["sky"]
    ground = lighting["ground"]
    ambient = [(sky[k] + ground[k]) / 2 for k in range(3)]
    background.inputs["Color"].default_value = (ambient[0], ambient[1], ambient[2], 1.0)
    background.inputs["Strength"].default_value = 1.0
    for index, light in enumerate(lighting["lights"]):
        data = bpy.data.lights.new("lrm_sun_%d" % index, type="SUN")
        color = light["color"]
        strength = max(color)
        data.energy = strength
        data.color = tuple(c / strength for c in color) if strength > 0 else (1.0, 1.0, 1.0)
        if hasattr(data, "angle"):
            data.angle = 0.0
        sun = bpy.data.objects.new("lrm_sun_%d" % index, data)
        scene.collection.objects.link(sun)
        # A sun shines along its local -Z: point local +Z at the light.
        sun.rotation_mode = "QUATERNION"
        sun.rotation_quaternion = Vector(light["direction"]).normalized().to_track_quat("Z", "Y")


def setup_render(scene, job):
    engine = job.get("engine", "CYCLES")
    if engine == "CYCLES":
        # Cycles is an add-on; some builds (Debian's) do not enable it in the empty factory state.
        import addon_utils

        addon_utils.enable("cycles", default_set=True)
    engines = [cls.bl_idname for cls in bpy.types.RenderEngine.__subclasses__()] + ["BLENDER_EEVEE", "BLENDER_WORKBENCH"]
    if engine == "BLENDER_EEVEE" and "BLENDER_EEVEE_NEXT" in engines:
        engine = "BLENDER_EEVEE_NEXT"
    try:
        scene.render.engine = engine
    except TypeError:
        fail("render engine %s is not available in this Blender (has %s)" % (engine, ", ".join(sorted(set(engines)))))
    samples = int(job.get("samples", 64))
    if engine == "CYCLES":
        scene.cycles.device = "CPU"
        scene.cycles.samples = samples
        # A box filter one pixel wide: alpha is the pixel's coverage, as in the CPU path.
        scene.cycles.pixel_filter_type = "BOX"
        scene.cycles.filter_width = 1.0
        if hasattr(scene.cycles, "use_denoising"):
            scene.cycles.use_denoising = False
    else:
        scene.eevee.taa_render_samples = samples
    if engine != "CYCLES":
        scene.render.filter_size = 1.0
    scene.render.resolution_x = int(job["width"])
    scene.render.resolution_y = int(job["height"])
    scene.render.resolution_percentage = 100
    scene.render.pixel_aspect_x = 1.0
    scene.render.pixel_aspect_y = 1.0
    scene.render.film_transparent = True
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.image_settings.color_depth = "8"
    scene.view_settings.view_transform = "Standard"
    try:
        scene.view_settings.look = "None"
    except TypeError:
        pass  # look names differ across versions; "Standard" has no look by default
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0


def setup_camera(scene, job):
    data = bpy.data.cameras.new("lrm_camera")
    data.type = "PERSP"
    data.sensor_fit = "HORIZONTAL"
    # Computed by the C# side (BlenderLens): lens = fx * sensor_width (horizontal fit), shifts in units of the
    # larger image side placing the principal point.
    data.sensor_width = float(job["sensor_width"])
    data.lens = float(job["lens"])
    data.shift_x = float(job["shift_x"])
    data.shift_y = float(job["shift_y"])
    data.clip_start = 0.01
    data.clip_end = 100.0
    camera = bpy.data.objects.new("lrm_camera", data)
    scene.collection.objects.link(camera)
    scene.camera = camera
    return camera


def main():
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
    if len(argv) != 1:
        fail("usage: blender --background --python render_views.py -- job.json")
    with open(argv[0], "r", encoding="utf-8") as handle:
        job = json.load(handle)

    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    before = set(bpy.data.objects)
    import_mesh(job["mesh"])
    imported = [obj for obj in bpy.data.objects if obj not in before]
    meshes = [obj for obj in imported if obj.type == "MESH"]
    if not meshes:
        fail("the importer produced no mesh objects from " + job["mesh"])
    # Drop anything else the importer brought (cameras, lights of a glTF scene).
    for obj in imported:
        if obj.type not in ("MESH", "EMPTY"):
            bpy.data.objects.remove(obj, do_unlink=True)

    # The C# normalisation, applied on top of every root's world matrix: p' = scale * (p - center).
    scale = float(job["scale"])
    center = Vector(job["center"])
    normalise = Matrix.Diagonal((scale, scale, scale, 1.0)) @ Matrix.Translation(-center)
    for obj in imported:
        if obj.name in bpy.data.objects and obj.parent is None:
            obj.matrix_world = normalise @ obj.matrix_world
    bpy.context.view_layer.update()

    # Both engines must see the same geometry: compare the normalised bounds with the C# reader's.
    lo, hi = world_bounds(meshes)
    expected_lo, expected_hi = job["bounds"]
    error = max(max(abs(lo[k] - expected_lo[k]), abs(hi[k] - expected_hi[k])) for k in range(3))
    if error > 2e-3:
        fail("the imported geometry does not match lrm's reading of %s (normalised bounds %s..%s, expected %s..%s); "
             "the importer changed axes or units" % (job["mesh"], lo, hi, expected_lo, expected_hi))

    prepare_materials(meshes)
    setup_lighting(scene, job["lighting"])
    setup_render(scene, job)
    camera = setup_camera(scene, job)
    out = job["out"]
    os.makedirs(out, exist_ok=True)
    for index, c2w in enumerate(job["cameras"]):
        camera.matrix_world = Matrix([c2w[0:4], c2w[4:8], c2w[8:12], c2w[12:16]])
        scene.render.filepath = os.path.join(out, "%03d.png" % index)
        bpy.ops.render.render(write_still=True)
        if not os.path.isfile(scene.render.filepath):
            fail("Blender wrote no image for view %d (%s)" % (index, scene.render.filepath))
    sys.stdout.write("lrm-blender: rendered %d views\n" % len(job["cameras"]))


try:
    main()
except SystemExit:
    raise
except Exception as error:  # noqa: BLE001 - any failure must reach the C# side as exit code 1
    import traceback

    traceback.print_exc()
    fail("%s: %s" % (type(error).__name__, error))
