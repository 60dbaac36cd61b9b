package io.github.qwenasredge.ort

import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertSame
import org.junit.Assert.assertThrows
import org.junit.Assert.assertTrue
import org.junit.Assume.assumeFalse
import org.junit.Test
import java.io.File
import java.io.RandomAccessFile
import java.nio.ByteBuffer
import java.nio.ByteOrder
import java.nio.channels.FileChannel

/**
 * The wrappers on tests/android_bridge/native_models.py's models, found under
 * `<qwenasr.fixtures>/native/`.
 */
class OrtTest {
    private val dir: File = File(
        System.getProperty("qwenasr.fixtures") ?: error("set -Dqwenasr.fixtures to the fixtures folder"),
        "native",
    )

    private fun model(name: String): String = File(dir, name).path.also { require(File(it).isFile) { "no fixture $it" } }

    private fun direct(bytes: Int): ByteBuffer = ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder())

    private inline fun <T> Map<String, Tensor>.use(block: (Map<String, Tensor>) -> T): T =
        try {
            block(this)
        } finally {
            values.forEach { it.close() }
        }

    private fun checkAdd(session: OrtSession) {
        assertEquals(listOf("a", "b"), session.inputNames)
        assertEquals(listOf("sum", "prod"), session.outputNames)
        Tensor.fromFloats(floatArrayOf(1f, 2f, 3f), longArrayOf(3)).use { a ->
            Tensor.fromFloats(floatArrayOf(10f, 20f, 30f), longArrayOf(3)).use { b ->
                session.run(mapOf("a" to a, "b" to b)).use { out ->
                    assertEquals(listOf("sum", "prod"), out.keys.toList())
                    assertArrayEquals(floatArrayOf(11f, 22f, 33f), out.getValue("sum").floats(), 0f)
                    assertArrayEquals(floatArrayOf(10f, 40f, 90f), out.getValue("prod").floats(), 0f)
                    assertArrayEquals(longArrayOf(3), out.getValue("sum").shape)
                    assertEquals(ElementType.FLOAT, out.getValue("sum").type)
                }
                session.run(mapOf("a" to a, "b" to b), listOf("prod")).use { out ->
                    assertEquals(setOf("prod"), out.keys)
                }
            }
        }
    }

    @Test fun versionAndProviders() {
        assertTrue(Ort.version(), Ort.version().matches(Regex("""\d+\.\d+.*""")))
        assertTrue(Ort.availableProviders().toString(), "CPUExecutionProvider" in Ort.availableProviders())
        Ort.load() // idempotent
        Ort.load("/nonexistent/ignored-once-loaded.so")
    }

    @Test fun sessionFromPath() {
        val options = SessionOptions(
            intraOpThreads = 1,
            optimizationLevel = 1,
            providers = listOf(ExecutionProvider.CPU),
            config = mapOf("session.intra_op.allow_spinning" to "0"),
        )
        OrtSession.open(model("add.onnx"), options).use { checkAdd(it) }
    }

    @Test fun sessionFromDirectBufferKeptInPlace() {
        val bytes = File(model("add.ort")).readBytes()
        val buffer = direct(bytes.size + 8).apply { position(8); put(bytes); position(8) }
        val options = SessionOptions(config = mapOf("session.use_ort_model_bytes_directly" to "1"))
        OrtSession.open(buffer, options).use { checkAdd(it) }
        assertEquals("open leaves the position alone", 8, buffer.position())
    }

    @Test fun sessionFromMappedFileWithInitializers() {
        RandomAccessFile(model("add.ort"), "r").use { file ->
            val mapped = file.channel.map(FileChannel.MapMode.READ_ONLY, 0, file.length())
            val options = SessionOptions(
                config = mapOf(
                    "session.use_ort_model_bytes_directly" to "1",
                    "session.use_ort_model_bytes_for_initializers" to "1",
                ),
            )
            OrtSession.open(mapped, options).use { checkAdd(it) }
        }
    }

    @Test fun sessionFromHeapBuffer() {
        OrtSession.open(ByteBuffer.wrap(File(model("add.onnx")).readBytes())).use { checkAdd(it) }
    }

    @Test fun missingFile() {
        val path = File(dir, "missing.onnx").path
        val e = assertThrows(OrtException::class.java) { OrtSession.open(path) }
        assertTrue(e.message, e.message!!.startsWith("cannot open $path: "))
        assertFalse(e.message!!.contains('\n'))
    }

    @Test fun notAModel() {
        val e = assertThrows(OrtException::class.java) { OrtSession.open(ByteBuffer.wrap("not a model".toByteArray())) }
        assertTrue(e.message, e.message!!.startsWith("cannot open model bytes: "))
        assertThrows(IllegalArgumentException::class.java) { OrtSession.open(ByteBuffer.allocate(0)) }
    }

    @Test fun wrongNames() {
        OrtSession.open(model("add.onnx")).use { session ->
            Tensor.fromFloats(floatArrayOf(1f), longArrayOf(1)).use { t ->
                val e = assertThrows(OrtException::class.java) { session.run(mapOf("a" to t, "nope" to t)) }
                assertTrue(e.message, e.message!!.contains("Invalid input name: nope"))
                val e2 = assertThrows(OrtException::class.java) { session.run(mapOf("a" to t, "b" to t), listOf("nope")) }
                assertTrue(e2.message, e2.message!!.contains("Invalid output name: nope"))
                assertThrows(IllegalArgumentException::class.java) { session.run(mapOf("a" to t, "b" to t), emptyList()) }
                val e3 = assertThrows(OrtException::class.java) { session.ioBinding().use { it.bindInput("nope", t) } }
                assertTrue(e3.message, e3.message!!.startsWith("cannot bind input 'nope' of "))
            }
        }
    }

    @Test fun wrongInputType() {
        OrtSession.open(model("add.onnx")).use { session ->
            Tensor.fromLongs(longArrayOf(1), longArrayOf(1)).use { t ->
                val e = assertThrows(OrtException::class.java) { session.run(mapOf("a" to t, "b" to t)) }
                assertTrue(e.message, e.message!!.startsWith("cannot run "))
            }
        }
    }

    @Test fun providersMissingFromThisLibrary() {
        assumeFalse("this onnxruntime has XNNPACK", "XnnpackExecutionProvider" in Ort.availableProviders())
        val x = assertThrows(OrtException::class.java) {
            OrtSession.open(model("add.onnx"), SessionOptions(providers = listOf(ExecutionProvider.XNNPACK)))
        }
        assertTrue(x.message, x.message!!.contains("XNNPACK is not in this onnxruntime library ("))
        val n = assertThrows(OrtException::class.java) {
            OrtSession.open(model("add.onnx"), SessionOptions(providers = listOf(ExecutionProvider.NNAPI)))
        }
        assertTrue(n.message, n.message!!.contains("NNAPI is not in this onnxruntime library ("))
    }

    @Test fun badOptions() {
        assertThrows(IllegalArgumentException::class.java) { SessionOptions(optimizationLevel = 3) }
        assertThrows(IllegalArgumentException::class.java) { SessionOptions(intraOpThreads = -1) }
        val e = assertThrows(OrtException::class.java) {
            OrtSession.open(model("add.onnx"), SessionOptions(providers = listOf(ExecutionProvider("NNAPI", mapOf("fp17" to "1")))))
        }
        assertTrue(e.message, e.message!!.contains("unknown NNAPI option 'fp17'"))
    }

    @Test fun wrapIsZeroCopy() {
        val buffer = direct(12)
        Tensor.wrap(buffer, ElementType.FLOAT, longArrayOf(1, 3)).use { t ->
            buffer.asFloatBuffer().put(floatArrayOf(1f, 2f, 3f))
            assertArrayEquals(floatArrayOf(1f, 2f, 3f), t.floats(), 0f)
            t.buffer.putFloat(4, 7f)
            assertEquals(7f, buffer.getFloat(4), 0f)
            assertArrayEquals(longArrayOf(1, 3), t.shape)
            assertEquals(3L, t.elementCount)
        }
        // The remaining bytes of a sliced position are what is wrapped.
        val bigger = direct(16).apply { putInt(0, 5); putInt(4, 6); position(4) }
        Tensor.wrap(bigger, ElementType.INT32, longArrayOf(3)).use { t -> assertEquals(6, t.ints()[0]) }
    }

    @Test fun wrapErrors() {
        val heap = assertThrows(IllegalArgumentException::class.java) {
            Tensor.wrap(ByteBuffer.allocate(4), ElementType.FLOAT, longArrayOf(1))
        }
        assertTrue(heap.message, heap.message!!.contains("direct"))
        val size = assertThrows(IllegalArgumentException::class.java) { Tensor.wrap(direct(8), ElementType.FLOAT, longArrayOf(3)) }
        assertTrue(size.message, size.message!!.contains("needs 12 bytes; the buffer has 8 remaining"))
        val order = if (ByteOrder.nativeOrder() == ByteOrder.BIG_ENDIAN) ByteOrder.LITTLE_ENDIAN else ByteOrder.BIG_ENDIAN
        assertThrows(IllegalArgumentException::class.java) {
            Tensor.wrap(ByteBuffer.allocateDirect(4).order(order), ElementType.FLOAT, longArrayOf(1))
        }
        Tensor.wrap(ByteBuffer.allocateDirect(2).order(order), ElementType.UINT8, longArrayOf(2)).close() // bytes have no order
        assertThrows(IllegalArgumentException::class.java) { Tensor.wrap(direct(0), ElementType.FLOAT, longArrayOf(-1)) }
    }

    @Test fun factoriesAndScalars() {
        Tensor.fromFloats(floatArrayOf(2.5f), longArrayOf()).use { t ->
            assertEquals(0, t.shape.size)
            assertEquals(1L, t.elementCount)
            assertArrayEquals(floatArrayOf(2.5f), t.floats(), 0f)
        }
        Tensor.wrap(direct(8).apply { putLong(0, 42L) }, ElementType.INT64, longArrayOf()).use { t ->
            assertArrayEquals(longArrayOf(42L), t.longs())
        }
        Tensor.allocate(ElementType.FLOAT16, longArrayOf(2, 3)).use { t ->
            assertEquals(ElementType.FLOAT16, t.type)
            assertEquals(12, t.buffer.capacity())
            assertEquals(ByteOrder.nativeOrder(), t.buffer.order())
        }
        Tensor.allocate(ElementType.FLOAT, longArrayOf(0, 4)).use { t ->
            assertEquals(0, t.buffer.capacity())
            assertEquals(0, t.floats().size)
        }
        Tensor.wrap(direct(0), ElementType.FLOAT, longArrayOf(0, 2)).use { t ->
            assertEquals(0, t.floats().size)
            assertArrayEquals(longArrayOf(0, 2), t.shape)
        }
        Tensor.fromInts(intArrayOf(1, -2, 3, 4), longArrayOf(2, 2)).use { assertArrayEquals(intArrayOf(1, -2, 3, 4), it.ints()) }
        Tensor.fromLongs(longArrayOf(Long.MAX_VALUE), longArrayOf(1)).use { assertArrayEquals(longArrayOf(Long.MAX_VALUE), it.longs()) }
        assertThrows(IllegalArgumentException::class.java) { Tensor.fromFloats(floatArrayOf(1f, 2f), longArrayOf(3)) }
        assertThrows(IllegalArgumentException::class.java) { Tensor.allocate(ElementType.FLOAT, longArrayOf(2, -1)) }
        Tensor.fromLongs(longArrayOf(1), longArrayOf(1)).use { t ->
            val e = assertThrows(IllegalArgumentException::class.java) { t.floats() }
            assertTrue(e.message, e.message!!.contains("INT64"))
        }
    }

    @Test fun closedObjectsThrowIllegalState() {
        val t = Tensor.fromFloats(floatArrayOf(1f), longArrayOf(1))
        t.close()
        t.close()
        assertTrue(t.isClosed)
        assertThrows(IllegalStateException::class.java) { t.floats() }
        assertThrows(IllegalStateException::class.java) { t.shape }
        assertThrows(IllegalStateException::class.java) { t.buffer }
        val session = OrtSession.open(model("add.onnx"))
        assertThrows(IllegalStateException::class.java) { session.run(mapOf("a" to t, "b" to t)) }
        val binding = session.ioBinding()
        assertThrows(IllegalStateException::class.java) { binding.bindInput("a", t) }
        session.close()
        session.close()
        assertThrows(IllegalStateException::class.java) { session.run(emptyMap()) }
        assertThrows(IllegalStateException::class.java) { session.ioBinding() }
        assertThrows(IllegalStateException::class.java) { binding.run() }
        assertThrows(IllegalStateException::class.java) { binding.outputs() }
        binding.close()
        assertThrows(IllegalStateException::class.java) { binding.clearBoundInputs() }
    }

    /** state.onnx: new_state = 2 * state + x written over state when both are one tensor. */
    @Test fun bindingUpdatesStateInPlace() {
        OrtSession.open(model("state.onnx")).use { session ->
            val buffer = direct(24).apply { asFloatBuffer().put(floatArrayOf(1f, 2f, 3f, 4f, 5f, 6f)) }
            val state = Tensor.wrap(buffer, ElementType.FLOAT, longArrayOf(2, 3))
            val x = Tensor.fromFloats(FloatArray(6) { 1f }, longArrayOf(2, 3))
            session.ioBinding().use { binding ->
                binding.bindInput("state", state)
                binding.bindOutput("new_state", state)
                binding.bindInput("x", x)
                binding.bindOutputToCpu("total")
                state.close() // the binding still holds it
                x.close()
                for (expected in listOf(48f, 102f)) {
                    binding.run()
                    binding.outputs().use { out ->
                        assertEquals(setOf("new_state", "total"), out.keys)
                        val total = out.getValue("total")
                        assertEquals(0, total.shape.size)
                        assertEquals(expected, total.floats()[0], 1e-4f)
                        assertArrayEquals(FloatArray(6) { buffer.getFloat(4 * it) }, out.getValue("new_state").floats(), 0f)
                    }
                }
                assertEquals(7f, buffer.getFloat(0), 0f)
                assertEquals(27f, buffer.getFloat(20), 0f)
                binding.clearBoundInputs()
                val e = assertThrows(OrtException::class.java) { binding.run() }
                assertTrue(e.message, e.message!!.startsWith("cannot run "))
                binding.clearBoundOutputs()
                binding.outputs().use { assertTrue(it.isEmpty()) }
            }
        }
    }

    /** kv.onnx: ScatterElements writes one row per step into the one past/present tensor. */
    @Test fun bindingKvCacheInPlace() {
        OrtSession.open(model("kv.onnx")).use { session ->
            Tensor.allocate(ElementType.FLOAT, longArrayOf(1, 1, 4, 2)).use { cache ->
                val memory = cache.buffer
                while (memory.hasRemaining()) memory.put(0)
                session.ioBinding().use { binding ->
                    binding.bindInput("past", cache)
                    binding.bindOutput("present", cache)
                    binding.bindOutputToCpu("total")
                    for (step in 0 until 4) {
                        val row = Tensor.fromFloats(floatArrayOf(step + 1f, step + 1f), longArrayOf(1, 1, 1, 2))
                        val index = Tensor.fromLongs(longArrayOf(step.toLong(), step.toLong()), longArrayOf(1, 1, 1, 2))
                        binding.bindInput("new", row)
                        binding.bindInput("index", index)
                        row.close()
                        index.close()
                        binding.run()
                        val rows = cache.floats()
                        for (r in 0 until 4) assertEquals("step $step row $r", if (r <= step) r + 1f else 0f, rows[2 * r], 0f)
                    }
                    binding.outputs().use { out ->
                        assertEquals(20f, out.getValue("total").floats()[0], 0f)
                        assertArrayEquals(cache.floats(), out.getValue("present").floats(), 0f)
                    }
                }
            }
        }
    }

    @Test fun elementTypes() {
        OrtSession.open(model("cast.onnx")).use { session ->
            Tensor.fromLongs(longArrayOf(-1, 0, 5), longArrayOf(3)).use { ids ->
                session.run(mapOf("ids" to ids)).use { out ->
                    assertArrayEquals(intArrayOf(-1, 0, 5), out.getValue("ids32").ints())
                    assertArrayEquals(longArrayOf(0, 1, 6), out.getValue("next").longs())
                    assertEquals(ElementType.FLOAT16, out.getValue("half").type)
                    assertEquals(0x4500.toShort(), out.getValue("half").buffer.getShort(4)) // 5.0 in binary16
                    assertEquals(ElementType.BOOL, out.getValue("positive").type)
                    assertArrayEquals(byteArrayOf(0, 0, 1), out.getValue("positive").bytes())
                }
            }
        }
        assertSame(ElementType.INT64, ElementType.fromOnnx(7))
        assertThrows(IllegalArgumentException::class.java) { ElementType.fromOnnx(8) }
    }

    @Test fun sessionCloseClosesItsBindings() {
        val session = OrtSession.open(model("add.onnx"))
        val binding = session.ioBinding()
        session.close()
        assertThrows(IllegalStateException::class.java) { binding.bindOutputToCpu("sum") }
        binding.close()
    }
}
