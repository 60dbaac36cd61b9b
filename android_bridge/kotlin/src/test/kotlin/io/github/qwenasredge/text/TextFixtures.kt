package io.github.qwenasredge.text

import org.junit.Assert.fail
import java.io.File

/** The golden cases tests/android_bridge/text_cases.py writes under `<fixtures>/text/`. */
object TextFixtures {
    val dir: File by lazy {
        val root = System.getProperty("qwenasr.fixtures")
            ?: throw AssertionError("system property qwenasr.fixtures is not set (the fixtures folder)")
        File(root, "text").also { if (!File(it, "cases.json").isFile) fail("no ${it.path}/cases.json") }
    }

    val cases: Map<String, Any?> by lazy { Json.parseObject(File(dir, "cases.json").readText()) }

    @Suppress("UNCHECKED_CAST")
    fun list(name: String): List<Map<String, Any?>> = cases.list(name) as List<Map<String, Any?>>

    /** Runs [check] on every case (it returns null when equal, else what differed) and fails with
     * the first mismatches, naming their inputs. */
    fun <T> checkAll(what: String, cases: List<T>, check: (T) -> String?) {
        val bad = ArrayList<String>()
        var count = 0
        for ((k, c) in cases.withIndex()) {
            val problem = try {
                check(c)
            } catch (e: Exception) {
                "threw $e"
            }
            if (problem != null) {
                count++
                if (bad.size < 8) bad.add("#$k: $problem")
            }
        }
        println("$what: ${cases.size - count}/${cases.size} cases equal")
        if (count > 0) fail("$what: $count of ${cases.size} cases differ; first:\n" + bad.joinToString("\n"))
    }

    /** A string with its non-ASCII and control chars escaped, for messages. */
    fun show(s: String?): String = if (s == null) "null" else buildString {
        append('"')
        s.codePoints().forEach { cp ->
            if (cp in 0x20..0x7E && cp != '"'.code && cp != '\\'.code) appendCodePoint(cp)
            else if (cp < 0x10000) append("\\u%04x".format(cp)) else append("\\U%08x".format(cp))
        }
        append('"')
    }
}
